package study

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"latentedit/internal/atomicfile"
)

// Link is a link to another page of the report (the default models, the
// retinal pseudo-cases) shown in the header.
type Link struct{ Href, Text string }

func writeHTML(path string, res *Results) error {
	return atomicfile.Write(path, func(w io.Writer) error { return page.Execute(w, res) })
}

func num(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmtNum(*p)
}

func fmtNum(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case v == 0:
		return "0"
	case a < 1e-3:
		return fmt.Sprintf("%.1e", v)
	case a < 10:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func sortedR2(m map[string]float64) [][2]string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][2]string
	for _, k := range keys {
		out = append(out, [2]string{k, fmt.Sprintf("%.3f", m[k])})
	}
	return out
}

// page is index.html; the same set holds the quality section and page (quality.go).
var page = template.Must(template.Must(template.New("study").Funcs(template.FuncMap{"num": num, "f": fmtNum, "r2": sortedR2,
	"minEff": func() float64 { return minSpreadsPerStep }, "words": func(s string) string { return strings.ReplaceAll(s, "_", " ") }, "pct": pct, "rate": rate, "signed": signed}).Parse(qualitySection + qualityPage)).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>latentedit — editing methods compared on {{.Dataset}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.pix{image-rendering:pixelated}figure{margin:1em 0}figcaption{color:#555;font-size:14px}code{background:#f3f3f3;padding:1px 4px}
nav a{margin-right:1em}
</style></head><body>
<h1>Editing methods compared on <code>{{.Dataset}}</code></h1>
<p>Model <code>{{.Model}}</code> ({{.Kind}}). Every number on this page is in <a href="metrics.json">metrics.json</a>.
Changes are read off the images by an <em>oracle</em>, a CNN trained on rendered images whose factors are known.</p>
<nav><a href="#sequence">sequential edits</a><a href="#commutativity">commutativity</a><a href="#table">table</a>{{if .Quality}}<a href="#quality">quality</a>{{end}}<a href="#heat">attribute change</a><a href="#sweeps">traversals</a><a href="#defs">definitions</a>{{range .Links}}<a href="{{.Href}}">{{.Text}}</a>{{end}}</nav>

<h2 id="sequence">Sequential edits</h2>
<p>Each row is one method. From the original, the edits are applied one after another: {{range $i, $f := .SequenceCols}}{{if $i}}, {{end}}+ {{words $f}}{{end}}
(each column keeps the edits to its left). A direction is used for a factor when the Hungarian matching of directions to factors assigned it;
its step is chosen to move that factor by {{.Options.Move}} spreads (at most |t| = {{.Options.MaxT}}). A grey tile means the method has no direction for that factor.</p>
{{range .Sequences}}<figure><img class="pix" src="{{.}}" alt="sequential edit grid {{.}}"><figcaption>{{.}}</figcaption></figure>{{end}}

<h2 id="commutativity">Commutativity</h2>
<p>For every pair of directions k≠l, φ<sub>k</sub><sup>t</sup>∘φ<sub>l</sub><sup>s</sup> versus φ<sub>l</sub><sup>s</sup>∘φ<sub>k</sub><sup>t</sup> (t = s = {{.Options.CommT}}, {{.Options.CommLatents}} latents),
compared in latent space, in pixels and in the oracle's reading of the factors. Lower is better.</p>
<figure><img src="{{.Chart}}" alt="commutativity error per method"></figure>

<h2 id="table">All methods</h2>
<table><tr><th>editor</th><th>method</th><th>K</th><th>RCA</th><th>matched</th><th>effect</th><th>leakage</th><th>identity change</th>{{if $.ClassesRead}}<th>class kept</th>{{end}}
<th>comm. latent</th><th>comm. image</th><th>comm. attribute</th><th>Fréchet (edited)</th></tr>
{{range .Editors}}<tr><td>{{.Name}}</td><td>{{.Method}}{{if and .Space (ne .Space "z")}} in {{.Space}}{{end}}</td><td>{{.K}}</td><td>{{num .RCA}}</td><td>{{.Matches}}</td><td>{{num .MeanEffect}}</td><td>{{num .MeanLeakage}}</td>
<td>{{num .MeanIdentity}}</td>{{if $.ClassesRead}}<td>{{num .MeanClassKept}}</td>{{end}}<td>{{f .Commutativity.Latent}}</td><td>{{f .Commutativity.Image}}</td><td>{{f .Commutativity.AttributeMean}}</td><td>{{f .Frechet}}</td></tr>
{{end}}</table>
<p>Quality reference: Fréchet distance of unedited samples to real images {{f .FrechetSamples}}; of two sets of real images {{f .FrechetReal}} (the floor).</p>
<p>Oracle held-out R² per factor ({{.OracleSteps}} training steps):</p>
<table><tr>{{range r2 .OracleR2}}<th>{{index . 0}}</th>{{end}}</tr><tr>{{range r2 .OracleR2}}<td>{{index . 1}}</td>{{end}}</tr></table>

<h3>Matched directions</h3>
{{range .Editors}}{{$e := .}}<details><summary><b>{{.Name}}</b>: {{.Matches}} of {{.K}} directions matched</summary>
<table><tr><th>direction</th><th>matched factor</th><th>effect</th><th>leakage</th><th>step t</th><th>factor moved (spreads)</th><th>identity change</th>{{if $.ClassesRead}}<th>class kept</th>{{end}}</tr>
{{range $k, $n := .Names}}<tr><td>{{$k}} {{$n}}</td><td>{{index $e.Matched $k}}</td><td>{{num (index $e.TargetEffect $k)}}</td><td>{{num (index $e.Leakage $k)}}</td>
<td>{{num (index $e.Steps $k)}}</td><td>{{num (index $e.TargetMove $k)}}</td><td>{{num (index $e.Identity $k)}}</td>{{if $.ClassesRead}}<td>{{num (index $e.ClassKept $k)}}</td>{{end}}</tr>{{end}}
</table></details>{{end}}

{{with .Quality}}{{template "quality" .}}{{end}}

<h2 id="heat">Attribute change per direction</h2>
<p>Mean oracle change of every factor (columns) per unit step along every direction (rows), in spreads of the factor (its standard deviation in the data;
1/√12 for hues). A clean direction has one strong cell in its row. Directions are named after a factor when the matching assigns it and the change is at least {{minEff}} spreads per unit step.</p>
{{range .Editors}}<figure><img src="{{.HeatMap}}" alt="attribute change of {{.Name}}"></figure>{{end}}

<h2 id="sweeps">Traversals</h2>
<p>One row per direction, t from −{{.Options.MaxT}}/2 to +{{.Options.MaxT}}/2; the middle column is the original.</p>
{{range .Editors}}<figure><img class="pix" src="{{.Traversal}}" alt="traversal of {{.Name}}" style="width:576px"><figcaption>{{.Name}} ({{.Method}})</figcaption></figure>{{end}}

<h2 id="defs">Definitions</h2>
<ul>
<li><b>RCA</b>: reconstructor classification accuracy, how often the reconstructor tells which direction moved an image pair (learned methods; from training).</li>
<li><b>effect</b>: |change of the matched factor per unit step|, divided by the largest such change any direction of the editor makes on that factor (1 = the best direction for it); <b>leakage</b>: the same ratio on all other factors, averaged. Means over matched directions.</li>
<li><b>identity change</b>: editing until the matched factor moved by {{.Options.Move}} spreads (its standard deviation in the data), the mean |change| of every other factor, in spreads.</li>
<li><b>Fréchet (edited)</b>: Fréchet distance between oracle features of edited samples (random direction, random step up to ±{{.Options.MaxT}}/2) and of real images.</li>
</ul>
</body></html>
`))
