package openai

import "bytes"

// Bounds of what a Keeper keeps of a JSON answer.
const (
	KeepWhole = 4 << 20  // answers up to this size are kept whole
	TailSize  = 64 << 10 // of larger ones, only the last TailSize bytes
)

// Keeper keeps what of a non-streamed answer llmscope needs to read it: the
// whole body up to KeepWhole bytes, else only its tail, where OpenAI puts
// the model and usage of large answers (embeddings). Memory stays bounded
// whatever the size of the answer.
type Keeper struct {
	Buf      *bytes.Buffer // where the bytes go; must be set
	overflow bool
}

// Write keeps p (the next bytes of the body).
func (k *Keeper) Write(p []byte) {
	k.Buf.Write(p)
	if k.Buf.Len() > KeepWhole {
		k.overflow = true
		tail := k.Buf.Bytes()[k.Buf.Len()-TailSize:]
		copy(k.Buf.Bytes(), tail)
		k.Buf.Truncate(TailSize)
	}
}

// Overflowed reports whether the body outgrew KeepWhole (only its tail is kept).
func (k *Keeper) Overflowed() bool { return k.overflow }

// ReadInto reads what was kept of a body of operation op into res.
func (k *Keeper) ReadInto(res *Response, op string) {
	if k.overflow {
		res.ReadTail(k.Buf.Bytes())
		return
	}
	res.ReadBody(op, k.Buf.Bytes())
}
