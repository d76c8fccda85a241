package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"latentedit/workspace"
)

// runOracle trains the model's oracle (the regressor of its dataset's
// factors that evaluate, the quality metrics and pseudocase judge with),
// resuming a killed training, or reports the one it has.
func runOracle(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("oracle", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	steps := fs.Int("steps", 3000, "Adam steps when the model has no oracle yet (a killed training resumes)")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return errUsage{fmt.Errorf("--model is required")}
	}
	if *steps < 1 {
		return errUsage{fmt.Errorf("--steps must be ≥ 1")}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	o, trained, err := ws.OracleProgress(*steps, stderr, *jsonOut)
	if err != nil {
		return err
	}
	verb := "has"
	if trained {
		verb = "trained"
	}
	var r2 []string
	for _, f := range o.Factors {
		r2 = append(r2, fmt.Sprintf("%s %.3f", f, o.R2[f]))
	}
	sort.Strings(r2)
	return printResult(stdout, *jsonOut, map[string]any{"oracle": ws.OracleDir(), "trained": trained, "steps": o.Steps, "r2": o.R2},
		fmt.Sprintf("%s %s an oracle in %s (%d steps); held-out R²: %s", *model, verb, ws.OracleDir(), o.Steps, strings.Join(r2, ", ")))
}
