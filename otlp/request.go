package otlp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The collector service's messages (ExportTraceServiceRequest and
// ExportTraceServiceResponse) are encoded here by hand with protowire: the
// generated package for them, go.opentelemetry.io/proto/otlp/collector/...,
// also holds the gRPC service and so links gRPC and grpc-gateway into the
// binary, which only ever speaks OTLP/HTTP.

// Request is one OTLP ExportTraceServiceRequest:
//
//	message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
//
// Marshal encodes it exactly as the generated message would.
type Request struct {
	ResourceSpans []*tracepb.ResourceSpans
}

// GetResourceSpans returns r's resource spans; nil for a nil r.
func (r *Request) GetResourceSpans() []*tracepb.ResourceSpans {
	if r == nil {
		return nil
	}
	return r.ResourceSpans
}

// SpanCount returns the number of spans r holds.
func (r *Request) SpanCount() int {
	n := 0
	for _, rs := range r.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// Marshal returns r in the protobuf binary encoding, deterministically: the
// same request always gives the same bytes.
func (r *Request) Marshal() ([]byte, error) {
	m := proto.MarshalOptions{Deterministic: true}
	var b []byte
	for _, rs := range r.GetResourceSpans() {
		n := m.Size(rs)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		var err error
		if b, err = m.MarshalAppend(b, rs); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// DecodeRequest parses the protobuf binary encoding of an
// ExportTraceServiceRequest (what a receiver gets from Send). Unknown fields
// are skipped.
func DecodeRequest(b []byte) (*Request, error) {
	r := &Request{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("otlp: request: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("otlp: request: %w", protowire.ParseError(n))
			}
			rs := &tracepb.ResourceSpans{}
			if err := proto.Unmarshal(v, rs); err != nil {
				return nil, fmt.Errorf("otlp: request: %w", err)
			}
			r.ResourceSpans = append(r.ResourceSpans, rs)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("otlp: request: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return r, nil
}

// partialSuccess is ExportTraceServiceResponse's only field:
//
//	message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
//	message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
type partialSuccess struct {
	RejectedSpans int64
	ErrorMessage  string
}

// decodeResponseProto parses a protobuf ExportTraceServiceResponse. Unknown
// fields are skipped; for a field given twice the last one wins, and
// embedded messages given twice are merged, as proto.Unmarshal does.
func decodeResponseProto(b []byte) (partialSuccess, error) {
	var ps partialSuccess
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) (int, error) {
		if num != 1 {
			return skip(num, typ, v)
		}
		if typ != protowire.BytesType {
			return 0, errors.New("partial_success: wrong wire type")
		}
		msg, n := protowire.ConsumeBytes(v)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		return n, eachField(msg, func(num protowire.Number, typ protowire.Type, v []byte) (int, error) {
			switch {
			case num == 1 && typ == protowire.VarintType:
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return 0, protowire.ParseError(n)
				}
				ps.RejectedSpans = int64(x)
				return n, nil
			case num == 2 && typ == protowire.BytesType:
				s, n := protowire.ConsumeBytes(v)
				if n < 0 {
					return 0, protowire.ParseError(n)
				}
				ps.ErrorMessage = string(s)
				return n, nil
			case num == 1 || num == 2:
				return 0, fmt.Errorf("field %d: wrong wire type", num)
			}
			return skip(num, typ, v)
		})
	})
	return ps, err
}

// eachField calls f for each field of the message b with the bytes after
// its tag; f returns how many of them the field's value took.
func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		n, err := f(num, typ, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func skip(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return n, nil
}

// decodeResponseJSON parses the protobuf JSON mapping of an
// ExportTraceServiceResponse: fields by their JSON (lowerCamel) or proto
// names, int64 as a string or a number, unknown fields ignored.
func decodeResponseJSON(b []byte) (partialSuccess, error) {
	var ps partialSuccess
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return ps, err
	}
	raw := field(top, "partialSuccess", "partial_success")
	if raw == nil || string(raw) == "null" {
		return ps, nil
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(raw, &inner); err != nil {
		return ps, fmt.Errorf("partialSuccess: %w", err)
	}
	if v := field(inner, "rejectedSpans", "rejected_spans"); v != nil && string(v) != "null" {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v) // a bare number
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ps, fmt.Errorf("rejectedSpans: %w", err)
		}
		ps.RejectedSpans = n
	}
	if v := field(inner, "errorMessage", "error_message"); v != nil && string(v) != "null" {
		if err := json.Unmarshal(v, &ps.ErrorMessage); err != nil {
			return ps, fmt.Errorf("errorMessage: %w", err)
		}
	}
	return ps, nil
}

// field returns m's value under the JSON name, else under the proto name.
func field(m map[string]json.RawMessage, jsonName, protoName string) json.RawMessage {
	if v, ok := m[jsonName]; ok {
		return v
	}
	return m[protoName]
}
