package pseudocase

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/models"
)

// TestArtifactsRefuseBadFiles: every kind of saved artifact — model,
// editor, oracle, segmenter, calibration — refuses a truncated weights file,
// a foreign format version, a weights checksum that does not match and a
// spec of another kind, each with the offending file named.
func TestArtifactsRefuseBadFiles(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	type artifact struct {
		name          string
		spec, weights string // relative to the model directory; weights "" when there are none
		load          func(dir string) error
	}
	loadEditor := func(dir string) (edit.Editor, error) {
		return edit.Load(filepath.Join(dir, "editors", "interfacegan"), edit.SpaceZ, 64, be)
	}
	artifacts := []artifact{
		{"model", generator.InfoFile, generator.WeightsFile, func(dir string) error { _, err := generator.Load(dir, be); return err }},
		{"editor", "editors/interfacegan/" + edit.SpecFile, "editors/interfacegan/" + edit.WeightsFile, func(dir string) error { _, err := loadEditor(dir); return err }},
		{"oracle", "oracle/oracle.json", "oracle/oracle.ckpt", func(dir string) error {
			_, err := evaluate.LoadOracle(filepath.Join(dir, evaluate.OracleDir), be)
			return err
		}},
		{"segmenter", "pseudocase/" + SegmenterSpec, "pseudocase/" + SegmenterWeights, func(dir string) error {
			_, err := LoadSegmenter(filepath.Join(dir, "pseudocase"), be)
			return err
		}},
		{"calibration", "pseudocase/calibration-interfacegan.json", "", func(dir string) error {
			e, err := loadEditor(dir)
			if err != nil {
				return err
			}
			o, err := evaluate.LoadOracle(filepath.Join(dir, evaluate.OracleDir), be)
			if err != nil {
				return err
			}
			_, err = LoadCalibration(filepath.Join(dir, "pseudocase", "calibration-interfacegan.json"), e, o)
			return err
		}},
	}
	version := regexp.MustCompile(`"format_version": \d+`)
	kind := regexp.MustCompile(`"kind": "[a-z]+"`)
	sum := regexp.MustCompile(`"weights_sha256": "[0-9a-f]`)
	for _, a := range artifacts {
		fresh := func(t *testing.T) string {
			dir, err := models.Extract("fundus-gan", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := a.load(dir); err != nil {
				t.Fatalf("the shipped %s does not load: %v", a.name, err)
			}
			return dir
		}
		editSpec := func(t *testing.T, dir string, re *regexp.Regexp, to string) {
			p := filepath.Join(dir, a.spec)
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !re.Match(raw) {
				t.Fatalf("%s has no %s", p, re)
			}
			os.WriteFile(p, re.ReplaceAll(raw, []byte(to)), 0o644)
		}
		cases := []struct {
			name  string
			spoil func(t *testing.T, dir string)
			file  string // the file the error must name
			field string
		}{
			{"foreign version", func(t *testing.T, dir string) { editSpec(t, dir, version, `"format_version": 99`) }, a.spec, "format_version"},
			{"truncated spec", func(t *testing.T, dir string) {
				p := filepath.Join(dir, a.spec)
				raw, _ := os.ReadFile(p)
				os.WriteFile(p, raw[:len(raw)/2], 0o644)
			}, a.spec, ""},
		}
		if a.name != "editor" { // editor.json has "method", not "kind"
			to := `"kind": "segmenter"`
			if a.name == "segmenter" {
				to = `"kind": "oracle"`
			}
			cases = append(cases, struct {
				name  string
				spoil func(t *testing.T, dir string)
				file  string
				field string
			}{"foreign kind", func(t *testing.T, dir string) { editSpec(t, dir, kind, to) }, a.spec, "kind"})
		}
		if a.weights != "" {
			cases = append(cases, []struct {
				name  string
				spoil func(t *testing.T, dir string)
				file  string
				field string
			}{
				{"truncated weights", func(t *testing.T, dir string) {
					p := filepath.Join(dir, a.weights)
					raw, _ := os.ReadFile(p)
					os.WriteFile(p, raw[:len(raw)/3], 0o644)
				}, a.weights, "weights_sha256"},
				{"checksum mismatch", func(t *testing.T, dir string) {
					p := filepath.Join(dir, a.spec)
					raw, _ := os.ReadFile(p)
					m := sum.Find(raw)
					flip := "0"
					if m[len(m)-1] == '0' {
						flip = "1"
					}
					os.WriteFile(p, sum.ReplaceAll(raw, append(m[:len(m)-1:len(m)-1], flip...)), 0o644)
				}, a.weights, "weights_sha256"},
			}...)
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", a.name, c.name), func(t *testing.T) {
				dir := fresh(t)
				c.spoil(t, dir)
				err := a.load(dir)
				if err == nil {
					t.Fatalf("accepted")
				}
				if !strings.Contains(err.Error(), filepath.Join(dir, c.file)) || !strings.Contains(err.Error(), c.field) {
					t.Errorf("error %q does not name %s and field %q", err, c.file, c.field)
				}
			})
		}
	}
}
