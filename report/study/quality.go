package study

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"latentedit/evaluate"
	"latentedit/internal/atomicfile"
)

// Files of a quality measurement inside a report folder.
const (
	QualityJSON = "quality.json"
	QualityHTML = "quality.html"
)

// WriteQuality writes a quality measurement into the report folder out:
// quality.json and quality.html, a page with the quality section alone
// (index.html shows the same section when the study ran with it). It
// returns the two paths.
func WriteQuality(out string, q *evaluate.Quality) (jsonPath, htmlPath string, err error) {
	raw, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("study: encoding quality: %w", err)
	}
	jsonPath, htmlPath = filepath.Join(out, QualityJSON), filepath.Join(out, QualityHTML)
	if err := atomicfile.WriteFile(jsonPath, append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return "", "", err
	}
	err = atomicfile.Write(htmlPath, func(w io.Writer) error { return page.ExecuteTemplate(w, "quality-page", q) })
	return jsonPath, htmlPath, err
}

// signed formats a relative difference with its sign, or a dash for none.
func signed(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%+.1f%%", 100**p)
}

// pct formats a rate as a percentage, or a dash for none.
func pct(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100**p)
}

func rate(v float64) string { return pct(&v) }

// The quality section, shared by index.html and quality.html; its dot is
// the *evaluate.Quality.
const qualitySection = `{{define "quality"}}
<h2 id="quality">Generative quality</h2>
<p>{{.N}} samples (latent seeds {{.SampleSeed}}…) against {{.N}} real images, and a second set of {{.N}} real images against the first
(seed {{.DataSeed}}): the real-vs-real values are what a perfect generator would score at this size. Both sides are read by the same judge,
the {{.Judge.Kind}} ({{.Judge.Steps}} steps, trained on the data alone at {{.Judge.Size}}×{{.Judge.Size}}{{with .Judge.TestAccuracy}}; test accuracy {{pct .}}{{end}}).
Every number is in <a href="quality.json">quality.json</a>.</p>
<table><tr><th>measure</th><th>samples</th><th>real vs real</th><th>ratio</th></tr>
<tr><td>Fréchet distance (judge features)</td><td>{{f .Frechet}}</td><td>{{f .FrechetReal}}</td><td>{{f .FrechetRatio}}</td></tr>
<tr><td>precision (k-NN manifolds, k = {{.K}})</td><td>{{f .Precision}}</td><td>{{f .PrecisionReal}}</td><td></td></tr>
<tr><td>recall (k-NN manifolds, k = {{.K}})</td><td>{{f .Recall}}</td><td>{{f .RecallReal}}</td><td></td></tr>
{{with .Artefacts}}<tr><td>retinas with ≠ 1 optic disc ({{.Judge}}, components ≥ {{.MinArea}} px)</td><td>{{rate .Sample}}</td><td>{{rate .Data}} (real)</td><td></td></tr>{{end}}
{{with .ReconstructionPSNR}}<tr><td>reconstruction PSNR (dB), real images</td><td>{{f .}}</td><td></td><td></td></tr>{{end}}
</table>
{{if .Checks}}<h3>Targets</h3>
<table><tr><th>target</th><th>value</th><th>want</th><th>pass</th><th>note</th></tr>
{{range .Checks}}<tr><td>{{.Target}}</td><td>{{num .Value}}</td><td>{{.Want}}</td><td>{{if .Pass}}✓{{else}}✗{{end}}</td><td>{{.Note}}</td></tr>
{{end}}</table>{{end}}
{{if .Factors}}<h3>Factor marginals</h3>
<p>Wasserstein-1 distance between the marginals, in spreads of the factor (its standard deviation in the data; 1/√12 for hues, measured on the circle).
"judge vs labels" compares the judge's reading of the real images with their true factors: the judge's own distortion.</p>
<table><tr><th>factor</th><th>spread</th><th>data mean</th><th>sample mean</th><th>W1 samples</th><th>W1 real vs real</th><th>W1 judge vs labels</th></tr>
{{range .Factors}}<tr><td>{{.Name}}</td><td>{{f .Spread}}</td><td>{{f .DataMean}}</td><td>{{f .SampleMean}}</td><td>{{f .W1}}</td><td>{{f .W1Real}}</td><td>{{num .W1Judge}}</td></tr>
{{end}}</table>{{end}}
{{if .Modes}}<h3>Mode rates</h3>
<p>The share of images in each bin, read by the judge; "labels" is the share by the true factors of the same real images.</p>
<table><tr><th>mode</th><th>bin</th><th>data</th><th>labels</th><th>samples</th><th>relative difference</th></tr>
{{range .Modes}}<tr><td>{{.Group}}</td><td>{{.Bin}}</td><td>{{rate .Data}}</td><td>{{pct .Truth}}</td><td>{{rate .Sample}}</td><td>{{signed .RelDiff}}</td></tr>
{{end}}</table>{{end}}
{{end}}`

const qualityPage = `{{define "quality-page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>latentedit — quality of {{.Model}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>Quality of <code>{{.Model}}</code> ({{.Kind}} on <code>{{.Dataset}}</code>)</h1>
{{template "quality" .}}
</body></html>
{{end}}`
