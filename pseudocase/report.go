package pseudocase

import (
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"latentedit/internal/atomicfile"
	"latentedit/internal/figure"
)

// ReportFile is the page WriteReport writes.
const ReportFile = "pseudocases.html"

// examples is how many cases of each run the page shows.
const examples = 6

// reportRun is one run directory as the page shows it.
type reportRun struct {
	Sum  Summary
	Grid string // file name of its before/after grid, beside the page
}

// WriteReport writes pseudocases.html and one before/after grid PNG per run
// into outDir, from finished, unsharded run directories (each holding the
// summary.json and cases/ a `pseudocase` run wrote). Runs are grouped by
// request (one section per lesion or combination), one table row and one
// grid per editor; the page links only files it writes beside itself.
func WriteReport(outDir string, runDirs []string) error {
	if len(runDirs) == 0 {
		return fmt.Errorf("pseudocase report: no run directories")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("pseudocase report: %w", err)
	}
	groups := map[string][]reportRun{}
	var order []string
	for _, dir := range runDirs {
		raw, err := os.ReadFile(filepath.Join(dir, summaryName(Shard{0, 1})))
		if err != nil {
			return fmt.Errorf("pseudocase report: run %s: %w (only whole, unsharded runs have a summary.json)", dir, err)
		}
		var r reportRun
		if err := json.Unmarshal(raw, &r.Sum); err != nil {
			return fmt.Errorf("pseudocase report: %s: %w", filepath.Join(dir, "summary.json"), err)
		}
		// Named after the run directory: two runs of one request and editor
		// (another --max-step, another --n) must not share a grid.
		r.Grid = "pseudocase-" + slug(filepath.Base(filepath.Clean(dir))) + ".png"
		if err := caseGrid(filepath.Join(outDir, r.Grid), dir, r.Sum); err != nil {
			return err
		}
		if _, ok := groups[r.Sum.Request]; !ok {
			order = append(order, r.Sum.Request)
		}
		groups[r.Sum.Request] = append(groups[r.Sum.Request], r)
	}
	type section struct {
		Request string
		Factors []string // requested factors, then the others
		Runs    []reportRun
	}
	var secs []section
	for _, req := range order {
		runs := groups[req]
		sort.SliceStable(runs, func(i, j int) bool { return methodRank(runs[i].Sum.Method) < methodRank(runs[j].Sum.Method) })
		secs = append(secs, section{Request: req, Factors: runs[0].Sum.Factors, Runs: runs})
	}
	var b strings.Builder
	if err := page.Execute(&b, secs); err != nil {
		return fmt.Errorf("pseudocase report: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(outDir, ReportFile), []byte(b.String()), atomicfile.DefaultPerm)
}

// methodRank orders the table rows as the issue lists the methods.
func methodRank(m string) int {
	for i, x := range []string{"linear", "warped", "curvilinear", "interfacegan"} {
		if m == x {
			return i
		}
	}
	return 99
}

func slug(s string) string {
	r := strings.NewReplacer(":", "", "@", "at", ",", "_", ".", "p", "/", "-", " ", "")
	return r.Replace(s)
}

// caseGrid writes the first examples cases of a run as rows of before,
// after, vessels before, vessels after, lesion area, and for a
// region-constrained run the region and the composite.
func caseGrid(path, dir string, s Summary) error {
	var imgs []image.Image
	kinds := caseKinds
	if s.Region != nil {
		kinds = append(kinds[:len(kinds):len(kinds)], regionKinds...)
	}
	for i := s.Lo; i < s.Lo+min(examples, s.Cases); i++ {
		for _, kind := range kinds {
			f, err := os.Open(CaseFile(dir, i, kind))
			if err != nil {
				return fmt.Errorf("pseudocase report: %w", err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("pseudocase report: %s: %w", CaseFile(dir, i, kind), err)
			}
			imgs = append(imgs, img)
		}
	}
	if len(imgs) == 0 {
		return fmt.Errorf("pseudocase report: run %s has no cases", dir)
	}
	return figure.Grid(path, imgs, len(kinds), len(kinds)*64) // 1:1 pixels keep the PNGs small; the page scales them up
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"f3":  func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"pct": func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) },
	"shift": func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f", *p)
	},
	"target": func(m map[string]float64, f string) string {
		if v, ok := m[f]; ok {
			return fmt.Sprintf("%.3f", v)
		}
		return "kept"
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>latentedit: retinal pseudo-cases</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
img{max-width:100%;image-rendering:pixelated}.note{color:#555}</style></head><body>
<h1>Retinal pseudo-cases</h1>
<p class="note">Each case is a generated retina G(z) (before) and the same latent moved by an editor so the fundus oracle should read the requested
lesion levels (after). The steps come from the editor's calibration (oracle change per unit step on separate latents), solved once per case
from the oracle's reading of the before image: the after reading is a measurement, not a set point. Structure is read by a small U-Net trained on
rendered fundus images (vessel, lesion and optic-disc masks): vessel Dice is computed outside the union of both images' segmented lesions
(grown by one pixel); disc shift is the distance between the located disc centres. Goals: Dice ≥ 0.85, shift ≤ 2 px.
Grid columns: before, after, vessels before, vessels after, lesion area excluded from the Dice; a region-constrained run (--region) adds its region and the feathered composite.</p>
{{range .}}{{$sec := .}}
<h2>{{.Request}}</h2>
<table><tr><th>editor (method)</th><th>cases</th>{{range .Factors}}<th>{{.}}<br>target · before → after</th>{{end}}
<th>goals met (extent ±0.1, angle ±20°, count ±1, cup ±0.05)</th><th>vessel Dice outside lesion</th><th>Dice ≥ 0.85</th><th>disc shift px</th><th>shift ≤ 2 px</th><th>lesion area</th><th>lesion blobs (segmenter) before → after</th><th>steps scaled down (mean scale)</th></tr>
{{range .Runs}}<tr><td>{{.Sum.Editor}} ({{.Sum.Method}}){{if .Sum.MaxStep}}, |step| ≤ {{.Sum.MaxStep}}{{end}}</td><td>{{.Sum.Cases}}</td>
{{$r := .}}{{range $sec.Factors}}<td>{{target $r.Sum.Target .}} · {{f3 (index $r.Sum.Before .)}} → {{f3 (index $r.Sum.After .)}}</td>{{end}}
<td>{{range $k, $v := .Sum.GoalMet}}{{$k}} {{pct $v}}; {{end}}all {{pct .Sum.AllGoalsMet}}{{with .Sum.AngleError}}; mean angle error {{printf "%.1f" .}}°{{end}}</td><td>{{f3 .Sum.VesselDice}}</td><td>{{pct .Sum.VesselDiceGood}}</td><td>{{shift .Sum.DiscShift}}</td><td>{{pct .Sum.DiscShiftGood}}</td><td>{{pct .Sum.LesionArea}}</td><td>{{f3 .Sum.BlobsBefore}} → {{f3 .Sum.BlobsAfter}}</td><td>{{if .Sum.MaxStep}}{{pct .Sum.Scaled}} ({{f3 .Sum.MeanScale}}){{else}}n/a: an older run that clamped each step at ±6{{end}}</td></tr>
{{end}}</table>
{{with index .Runs 0}}<p class="note">Judges (held-out, rendered images): oracle R² {{range $k, $v := .Sum.OracleR2}}{{$k}} {{f3 $v}}; {{end}}
segmenter Dice {{range $k, $v := .Sum.SegmenterDice}}{{$k}} {{f3 $v}}; {{end}}</p>{{end}}
{{range .Runs}}<h3>{{.Sum.Editor}} ({{.Sum.Method}}){{if .Sum.MaxStep}}, |step| ≤ {{.Sum.MaxStep}}{{end}}</h3><img width="660" src="{{.Grid}}" alt="before/after grid of {{.Sum.Editor}} for {{$sec.Request}}">
{{end}}{{end}}
</body></html>
`))
