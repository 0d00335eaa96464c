package otlp

import (
	"bytes"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"llmscope"
)

// Request.Marshal gives the bytes of the generated message, and
// DecodeRequest reads them back.
func TestRequestMarshalMatchesGenerated(t *testing.T) {
	opts := Options{Version: "v1", Attributes: map[string]string{"b": "2", "a": "1"}, Capture: true}
	for _, calls := range [][]*llmscope.Call{
		nil,
		{chatCall()},
		{chatCall(), streamFailedCall(), embeddingsCall()},
		capturedCalls(),
	} {
		r := Spans(calls, opts)
		r.ResourceSpans = append(r.ResourceSpans, Spans(calls, Options{}).ResourceSpans...) // two resources
		got, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb(r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d calls: Marshal differs from the generated message's encoding", len(calls))
		}
		back, err := DecodeRequest(got)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(pb(back), pb(r)) || back.SpanCount() != r.SpanCount() || r.SpanCount() != 2*len(calls) {
			t.Fatalf("%d calls: DecodeRequest did not give the request back (%d spans)", len(calls), back.SpanCount())
		}
	}
	// An unknown field is skipped; a truncated body is an error.
	b, _ := Spans([]*llmscope.Call{chatCall()}, Options{}).Marshal()
	b = protowire.AppendVarint(protowire.AppendTag(b, 9, protowire.VarintType), 5)
	if r, err := DecodeRequest(b); err != nil || r.SpanCount() != 1 {
		t.Errorf("unknown field: %v, %d spans", err, r.SpanCount())
	}
	if _, err := DecodeRequest(b[:len(b)/2]); err == nil {
		t.Error("truncated request decoded")
	}
}

// The hand-written response decoders read what protobuf and protojson
// write, as the generated message did.
func TestDecodeResponseMatchesGenerated(t *testing.T) {
	for _, resp := range []*coltracepb.ExportTraceServiceResponse{
		{},
		{PartialSuccess: &coltracepb.ExportTracePartialSuccess{}},
		{PartialSuccess: &coltracepb.ExportTracePartialSuccess{ErrorMessage: "slow down"}},
		{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "too large"}},
		{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1 << 40}},
	} {
		want := partialSuccess{resp.GetPartialSuccess().GetRejectedSpans(), resp.GetPartialSuccess().GetErrorMessage()}
		b, _ := proto.Marshal(resp)
		if got, err := decodeResponseProto(b); err != nil || got != want {
			t.Errorf("protobuf %v: got %+v, %v", resp, got, err)
		}
		for _, m := range []protojson.MarshalOptions{{}, {UseProtoNames: true}} {
			j, _ := m.Marshal(resp)
			if got, err := decodeResponseJSON(j); err != nil || got != want {
				t.Errorf("json %s: got %+v, %v", j, got, err)
			}
		}
	}
	// Unknown fields, numbers as JSON numbers, the field given twice.
	if got, err := decodeResponseJSON([]byte(`{"x":1,"partialSuccess":{"rejectedSpans":2,"y":[],"errorMessage":"e"}}`)); err != nil || got != (partialSuccess{2, "e"}) {
		t.Errorf("json with extras: %+v, %v", got, err)
	}
	b := protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1)
	for _, ps := range [][]byte{
		protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5),
		protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "m"),
	} {
		b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), ps)
	}
	if got, err := decodeResponseProto(b); err != nil || got != (partialSuccess{5, "m"}) {
		t.Errorf("protobuf, merged: %+v, %v", got, err)
	}
	for _, bad := range []string{"\x0a\xff", "\x08", "\x0a\x02\x10", "<html>oops</html>", "\x0a\x01\x08"} {
		if _, err := decodeResponseProto([]byte(bad)); err == nil {
			t.Errorf("protobuf %q decoded", bad)
		}
	}
	for _, bad := range []string{`{"partialSuccess":`, `[]`, `{"partialSuccess":{"rejectedSpans":"x"}}`, `{"partialSuccess":3}`} {
		if _, err := decodeResponseJSON([]byte(bad)); err == nil {
			t.Errorf("json %s decoded", bad)
		}
	}
}
