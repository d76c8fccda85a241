package artifact

import (
	"os"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

type testSpec struct {
	FormatVersion int     `json:"format_version"`
	Kind          string  `json:"kind"`
	WeightsSHA256 string  `json:"weights_sha256"`
	Gain          float64 `json:"gain"`
}

// TestFilesRoundTrip: Save stamps the spec and Load gives back the spec and
// the weights; a changed weights file and a foreign kind are refused by name.
func TestFilesRoundTrip(t *testing.T) {
	f := Files{Dir: t.TempDir(), Spec: "net.json", Weights: "net.ckpt", Kind: "net", Format: 3}
	ctx := context.New()
	ctx.In("net").VariableWithValue("w", tensors.FromFlatDataAndDimensions([]float32{1, 2, 3}, 3))
	in := &testSpec{Gain: 0.5}
	if err := f.Save(ctx, "/net", map[string]string{"who": "test"}, in, func(format int, kind, sha string) {
		in.FormatVersion, in.Kind, in.WeightsSHA256 = format, kind, sha
	}); err != nil {
		t.Fatal(err)
	}
	load := func() (*testSpec, *context.Context, map[string]string, error) {
		out := &testSpec{}
		ctx, meta, err := f.Load(out, func() (int, string, string) { return out.FormatVersion, out.Kind, out.WeightsSHA256 })
		return out, ctx, meta, err
	}
	out, lctx, meta, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if *out != *in || out.FormatVersion != 3 || out.Kind != "net" || meta["who"] != "test" {
		t.Fatalf("spec %+v (saved %+v), meta %v", out, in, meta)
	}
	v := lctx.In("net").GetVariable("w")
	if v == nil {
		t.Fatal("variable /net/w not loaded")
	}
	if got, _ := tensors.CopyFlatData[float32](v.MustValue()); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("weights %v", got)
	}

	// A foreign kind: the spec file and the field are named.
	raw, _ := os.ReadFile(f.SpecPath())
	if err := os.WriteFile(f.SpecPath(), []byte(strings.Replace(string(raw), `"kind": "net"`, `"kind": "other"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := load(); err == nil || !strings.Contains(err.Error(), f.SpecPath()) || !strings.Contains(err.Error(), "field kind") {
		t.Fatalf("foreign kind: %v", err)
	}
	// Spoiled weights under the right spec: the checksum names both files.
	if err := os.WriteFile(f.SpecPath(), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	w, _ := os.ReadFile(f.WeightsPath())
	w[len(w)-1] ^= 1
	if err := os.WriteFile(f.WeightsPath(), w, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := load(); err == nil || !strings.Contains(err.Error(), f.WeightsPath()) || !strings.Contains(err.Error(), "weights_sha256") {
		t.Fatalf("spoiled weights: %v", err)
	}
}
