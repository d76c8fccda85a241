// Command latentedit is the one binary of the project: it trains generators,
// discovers and applies latent edits, evaluates them and serves the editor.
// Each subcommand is a thin shell over a package; no logic lives here.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// exitUsage is the exit status of a command line that cannot run: a bad flag
// or a subcommand that is not built yet.
const exitUsage = 2

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"demo":       {"main job: from the embedded default models, write the report (./latentedit-report)", runDemo},
	"data":       {"render or export a dataset: PNGs, labels.csv and a contact sheet", runData},
	"train":      {"train a GAN or VAE into a model directory", runTrain},
	"import":     {"a PyTorch generator (.pt/.safetensors: our dcgan, SNGAN sn_resnet32/64) into a model directory", runImport},
	"export":     {"an editor's directions or weights as .safetensors/.pt/.npy for PyTorch (interop/torch/latentedit_edit.py)", runExport},
	"discover":   {"learn an editor (linear, warped, curvilinear) or fit one (ganspace, sefa)", runDiscover},
	"edit":       {"apply a sequence of edits to seeds or an image and write a PNG grid", runEdit},
	"evaluate":   {"measure editors with the oracle: attribute change, matching (names directions), leakage, commutativity", runEvaluate},
	"serve":      {"the web editor and its JSON API (127.0.0.1:8080 by default)", runServe},
	"oracle":     {"train the model's oracle of its dataset's factors (resumes a killed training), or show its held-out R²", runOracle},
	"sample":     {"N pictures of a model as PNGs, their latents (latents.csv) and a contact sheet", runSample},
	"prior":      {"fit a VAE's latent prior (a Gaussian mixture of its encodings) so its seeds draw real-looking samples", runPrior},
	"pseudocase": {"retinal pseudo-case generation: add lesions to generated retinas, measure that the structure stayed", runPseudocase},
	"invert":     {"real pictures in: train a GAN's encoder, invert PNG/JPEG pictures to latents, or measure inversion fidelity", runInvert},
}

// errUsage marks errors that should exit with exitUsage.
type errUsage struct{ error }

func notYet(name string) func([]string, io.Writer, io.Writer) error {
	return func([]string, io.Writer, io.Writer) error {
		return errUsage{fmt.Errorf("%s: not implemented yet", name)}
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: latentedit COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'latentedit COMMAND -h' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "latentedit: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	err := cmd.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "latentedit %s: %v\n", args[0], strings.TrimPrefix(err.Error(), args[0]+": "))
	var u errUsage
	if errors.As(err, &u) {
		return exitUsage
	}
	return 1
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("latentedit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, wrapping flag errors as usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage{err}
	}
	if fs.NArg() > 0 {
		return errUsage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}
