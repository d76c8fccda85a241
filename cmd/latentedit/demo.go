package main

import (
	"fmt"
	"html/template"
	"image"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/internal/figure"
	"latentedit/internal/progress"
	"latentedit/models"
	"latentedit/pseudocase"
	"latentedit/report/study"
	"latentedit/workspace"
)

// demoEditors are the faces GAN's shipped editors, in the order the
// report's rows show them: the three learned families, then the peers.
var demoEditors = []string{"linear", "warped", "curvilinear", "ganspace", "sefa", "interfacegan"}

// runDemo is the README's main job: on the embedded faces GAN and its
// shipped editors and oracle, the study report (sequential edits per
// method, commutativity, attribute change, traversals, every number) as
// ./latentedit-report/index.html, with a page of every embedded model's
// samples beside its training data (models.html).
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	out := fs.String("out", "latentedit-report", "folder for the report")
	backend := fs.String("backend", "", "go (CPU, default) or xla:/abs/path/plugin.so")
	n := fs.Int("n", 32, "latents per attribute-change and identity measurement (32, as evaluate: the matching then agrees with the shipped names)")
	commN := fs.Int("comm-n", 4, "latents for commutativity (each × all direction pairs)")
	qualityN := fs.Int("quality-n", 200, "images per Fréchet distance")
	pcN := fs.Int("pseudocases", 40, "retinal pseudo-cases per request and editor")
	jsonOut := fs.Bool("json", false, "progress as JSON lines; print the report path as JSON")
	serveAfter := fs.Bool("serve", false, "then start the web editor on the faces GAN at http://127.0.0.1:8080/ (Ctrl-C stops)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *commN < 1 || *qualityN < 2 || *pcN < 1 {
		return errUsage{fmt.Errorf("--n, --comm-n and --pseudocases must be ≥1, --quality-n ≥2")}
	}
	be, err := engine.NewBackend(*backend)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := modelsPage(*out, be, stderr, *jsonOut); err != nil {
		return err
	}
	ws, err := workspace.Open("faces-gan", *backend)
	if err != nil {
		return err
	}
	orc, err := ws.Oracle(3000, stderr)
	if err != nil {
		return err
	}
	if err := demoPseudocases(*out, *backend, *pcN, stderr, *jsonOut); err != nil {
		return err
	}
	links := []study.Link{{Href: "models.html", Text: "default models"}, {Href: pseudocase.ReportFile, Text: "retinal pseudo-cases"}}
	if _, err := study.Run(ws, demoEditors, orc, *out, false, study.Options{N: *n, CommLatents: *commN, QualityN: *qualityN,
		Log: stderr, JSON: *jsonOut, Links: links}); err != nil {
		return err
	}
	index, _ := filepath.Abs(filepath.Join(*out, "index.html"))
	if *jsonOut {
		fmt.Fprintf(stdout, "{\"report\":%q}\n", index)
	} else {
		fmt.Fprintf(stdout, "report written: %s\n", index)
	}
	if *serveAfter {
		return serveDemo(*backend, stdout, stderr)
	}
	return nil
}

// demoRequests are the pseudo-cases the demo adds to generated eyes: each
// lesion alone, then glaucoma with a detachment.
var demoRequests = []string{"detachment:0.6@45", "haemorrhage:3", "cup:0.7", "cup:0.7,detachment:0.6@45"}

// demoPseudocases runs the demo requests with each shipped fundus editor
// and writes the pseudo-case page (pseudocases.html) beside the report.
func demoPseudocases(out, backend string, n int, stderr io.Writer, jsonOut bool) error {
	ws, err := workspace.Open("fundus-gan", backend)
	if err != nil {
		return err
	}
	var runs []string
	for _, name := range ws.Editors() {
		tools, err := pseudocase.Load(ws, name, 600, 64, stderr)
		if err != nil {
			return err
		}
		for i, spec := range demoRequests {
			req, err := pseudocase.ParseRequest(spec)
			if err != nil {
				return err
			}
			if _, err := tools.Cal.Plan(req, 6); err != nil {
				continue // this editor has no direction for a requested lesion: no row for it
			}
			dir := filepath.Join(out, "pseudocase-runs", fmt.Sprintf("%s-%d", name, i))
			if _, err := pseudocase.Run(tools, pseudocase.Options{Request: req, N: n, Seed: 1, Shard: pseudocase.Shard{I: 0, N: 1},
				Out: dir, Log: stderr, JSON: jsonOut}); err != nil {
				return fmt.Errorf("pseudo-cases %s with %s: %w", spec, name, err)
			}
			runs = append(runs, dir)
		}
	}
	return pseudocase.WriteReport(out, runs)
}

// modelsPage writes models.html: each embedded default model's samples,
// drawn now from fixed seeds on this machine, beside a contact sheet of
// the data it was trained on, and its training curves.
func modelsPage(out string, be backends.Backend, stderr io.Writer, jsonOut bool) error {
	cache := filepath.Join(out, ".models")
	type section struct {
		Name, Dataset, Samples, Data, Curves string
		Info                                 generator.Info
	}
	var secs []section
	names := models.Names()
	bar := progress.New(stderr, len(names), "default models", jsonOut)
	for i, name := range names {
		dir, err := models.Extract(name, cache)
		if err != nil {
			return err
		}
		m, err := generator.Load(dir, be)
		if err != nil {
			return err
		}
		imgs, err := m.Generate(m.Latents(1, 64))
		if err != nil {
			return err
		}
		s := section{Name: name, Dataset: m.Info.Dataset, Info: m.Info,
			Samples: name + "-samples.png", Data: name + "-data.png", Curves: name + "-curves.png"}
		if err := figure.Grid(filepath.Join(out, s.Samples), imgs, 8, 512); err != nil {
			return err
		}
		ds, err := m.Info.OpenData(dataset.Options{N: 64, Seed: 1})
		if err != nil {
			return err
		}
		real := make([]image.Image, min(64, ds.Len()))
		for j := range real {
			if real[j], _, err = ds.Sample(j); err != nil {
				return err
			}
		}
		if err := figure.Grid(filepath.Join(out, s.Data), real, 8, 512); err != nil {
			return err
		}
		if b, err := os.ReadFile(filepath.Join(dir, generator.CurvesPNG)); err == nil {
			if err := atomicfile.WriteFile(filepath.Join(out, s.Curves), b, atomicfile.DefaultPerm); err != nil {
				return err
			}
		}
		secs = append(secs, s)
		bar.Set(i+1, nil)
	}
	bar.Finish()
	return atomicfile.Write(filepath.Join(out, "models.html"), func(w io.Writer) error { return demoPage.Execute(w, secs) })
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>latentedit — default models</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
.row{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}img{image-rendering:pixelated;width:512px;border:1px solid #ccc}
code{background:#f3f3f3;padding:1px 4px}</style></head><body>
<h1>latentedit — the default models</h1>
<p>Each generator below ships inside the binary. Left: 64 samples drawn now from seeds 1–64; right: the training data it imitates.
The comparison of editing methods is on <a href="index.html">the report's main page</a>.</p>
{{range .}}<h2>{{.Name}}</h2>
<p>{{.Info.Kind}} on <code>{{.Dataset}}</code>, {{.Info.Height}}×{{.Info.Width}}×{{.Info.Channels}}, latent dimension {{.Info.LatentDim}}, {{.Info.Step}} training steps.</p>
<div class="row"><figure><img src="{{.Samples}}" alt="samples of {{.Name}}"><figcaption>generated</figcaption></figure>
<figure><img src="{{.Data}}" alt="training data of {{.Name}}"><figcaption>training data</figcaption></figure></div>
<figure><img src="{{.Curves}}" alt="training curves" style="width:700px"><figcaption>training curves</figcaption></figure>
{{end}}</body></html>
`))
