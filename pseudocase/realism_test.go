package pseudocase

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/generator"
	"latentedit/internal/artifact"
)

// withDiscriminator returns tools whose model is the shipped fundus GAN
// with a discriminator of its architecture attached (trained for a few
// steps here: the shipped model predates the trainer saving it).
func withDiscriminator(t *testing.T, tools Tools) Tools {
	t.Helper()
	src := tools.Model.Dir
	dir := t.TempDir()
	for _, f := range []string{generator.InfoFile, generator.WeightsFile} {
		raw, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := tools.Model.Info.Config
	cfg.Steps, cfg.DataN, cfg.Batch, cfg.SampleEvery, cfg.CheckpointEvery = 3, 64, 8, 3, 3
	run := t.TempDir()
	if _, err := generator.Train(cfg, generator.Options{Out: run, Backend: tools.Model.Backend()}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(run, generator.DiscriminatorFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, generator.DiscriminatorFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := generator.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.DiscriminatorSHA256, err = artifact.FileSHA256(filepath.Join(dir, generator.DiscriminatorFile)); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, generator.InfoFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, tools.Model.Backend())
	if err != nil {
		t.Fatal(err)
	}
	tools.Model = m
	return tools
}

// TestRegionRealismTerm: on a model without a discriminator a realism
// weight is refused before any work; with one, the discriminator's reading
// is recorded, and weighing it lowers it at the kept latent.
func TestRegionRealismTerm(t *testing.T) {
	tools := shippedTools(t)
	req, _ := ParseRequest("cup:0.8")
	ro := DefaultRegionOptions()
	ro.Steps, ro.SeamRenders = 12, 4
	ro.Realism = 1
	bad := t.TempDir()
	if _, err := Run(tools, Options{Request: req, N: 1, Out: filepath.Join(bad, "a"), Region: &ro}); !errors.Is(err, ErrRegion) || !errors.Is(err, generator.ErrNoDiscriminator) {
		t.Errorf("realism weight on a model without a discriminator: %v", err)
	}
	if left, _ := os.ReadDir(bad); len(left) != 0 {
		t.Errorf("the refused run left %d entries behind", len(left))
	}

	dt := withDiscriminator(t, tools)
	const n = 4
	whole := map[float64]string{}
	read := func(w float64) *RegionSummary {
		o := ro
		o.Realism = w
		whole[w] = t.TempDir()
		sum, err := Run(dt, Options{Request: req, N: n, Seed: 70, Out: whole[w], Region: &o})
		if err != nil {
			t.Fatal(err)
		}
		r := sum.Region
		if r.RealismStart == nil || r.Realism == nil || r.Discriminator != dt.Model.Info.DiscriminatorSHA256 {
			t.Fatalf("realism weight %g: the discriminator's reading or checksum is not in the summary: %+v", w, r)
		}
		return r
	}
	without, with := read(0), read(10)
	t.Logf("discriminator loss: editor step %.4f; refined without the term %.4f, with it %.4f", *without.RealismStart, *without.Realism, *with.Realism)
	if *without.RealismStart != *with.RealismStart {
		t.Errorf("the editor's step reads %v and %v in two runs", *without.RealismStart, *with.RealismStart)
	}
	if !(*with.Realism < *without.Realism) || !(*with.Realism < *with.RealismStart) {
		t.Errorf("weighing realism: discriminator loss %.4f (start %.4f), %.4f without the term; want it lower than both",
			*with.Realism, *with.RealismStart, *without.Realism)
	}
}

// TestRegionRealismShards: a case's discriminator score is its own (the
// minibatch-stddev D reads each image with fixed company), so shards of a
// run with the realism term merge byte for byte into the whole run; shards
// that read different discriminators are not one run.
func TestRegionRealismShards(t *testing.T) {
	tools := shippedTools(t)
	dt := withDiscriminator(t, tools)
	req, _ := ParseRequest("cup:0.8")
	ro := DefaultRegionOptions()
	ro.Steps, ro.SeamRenders, ro.Realism = 6, 4, 1
	const n = 3
	whole := t.TempDir()
	if _, err := Run(dt, Options{Request: req, N: n, Seed: 90, Out: whole, Region: &ro}); err != nil {
		t.Fatal(err)
	}
	parts := t.TempDir()
	for i := range 2 {
		if _, err := Run(dt, Options{Request: req, N: n, Seed: 90, Shard: Shard{i, 2}, Out: parts, Region: &ro}); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(t.TempDir(), "m")
	if _, err := Merge(merged, []string{parts}); err != nil {
		t.Fatal(err)
	}
	sameCases(t, whole, merged)
	// One shard read the discriminator, the other had none.
	none := ro
	none.Realism = 0
	odd := t.TempDir()
	if _, err := Run(dt, Options{Request: req, N: n, Seed: 90, Shard: Shard{0, 2}, Out: odd, Region: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(tools, Options{Request: req, N: n, Seed: 90, Shard: Shard{1, 2}, Out: odd, Region: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(filepath.Join(t.TempDir(), "m"), []string{odd}); err == nil || !strings.Contains(err.Error(), "discriminator") {
		t.Errorf("merge of shards with and without a discriminator: %v", err)
	}
}
