package workspace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"latentedit/dataset"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/models"
)

// ClassifierDir is the folder of a model's class classifier (datasets of
// classes, like MNIST).
const ClassifierDir = evaluate.ClassifierDir

// Judge returns the judge of the model's quality: the Classifier for a
// dataset of classes (a factor "label"), the oracle otherwise —
// borrowed from oracleFrom (an oracle directory or another model) when it
// is not empty, else the model's own (Oracle). Either is refused unless it
// reads the model's dataset at the model's resolution, the judge's contract:
// trained on the data only, at the size the samples have.
func (w *Workspace) Judge(oracleFrom string, oracleSteps, classifierSteps int, log io.Writer) (evaluate.Judge, error) {
	factors, err := w.datasetFactors()
	if err != nil {
		return nil, err
	}
	if len(factors) == 0 {
		return nil, fmt.Errorf("model %s: dataset %s has no factors, so no oracle can be trained to judge it: the quality measures (Fréchet distance, precision and recall in oracle features, factor marginals) need one", w.Model.Dir, w.Model.Info.Dataset)
	}
	if slices.Contains(factors, "label") {
		if oracleFrom != "" {
			return nil, fmt.Errorf("--oracle %s: dataset %s is judged by its class classifier, not an oracle", oracleFrom, w.Model.Info.Dataset)
		}
		c, err := w.Classifier(classifierSteps, log)
		if err != nil {
			return nil, err
		}
		return c, w.checkJudge("classifier", c.Size, c.Chan, c.FactorNames(), []string{"label"}, c.Dataset)
	}
	var o *evaluate.Oracle
	if oracleFrom != "" {
		o, err = w.OracleFrom(oracleFrom)
	} else {
		o, err = w.Oracle(oracleSteps, log)
	}
	if err != nil {
		return nil, err
	}
	return o, w.checkJudge("oracle", o.Size, o.Chan, o.Factors, evaluate.OracleFactors(factors), "")
}

// HasClasses reports whether the model's dataset has a class label (a
// factor "label", like MNIST): its edits can change the class, which the
// Classifier reads.
func (w *Workspace) HasClasses() bool {
	f, err := w.datasetFactors()
	return err == nil && slices.Contains(f, "label")
}

// datasetFactors names the factors of the model's dataset.
func (w *Workspace) datasetFactors() ([]string, error) {
	info := w.Model.Info
	ds, err := info.OpenData(dataset.Options{N: 1, Split: "test"})
	if err != nil {
		return nil, err
	}
	return ds.Factors(), nil
}

// checkJudge refuses a judge of another dataset or size.
func (w *Workspace) checkJudge(kind string, size, channels int, judged, factors []string, dsName string) error {
	info := w.Model.Info
	switch {
	case size != info.Height || channels != info.Channels:
		return fmt.Errorf("%s reads %dx%dx%d images, model %s makes %dx%dx%d: a judge must be trained at the model's resolution", kind, size, size, channels, w.Model.Dir, info.Height, info.Width, info.Channels)
	case !slices.Equal(judged, factors):
		return fmt.Errorf("%s reads factors %v, dataset %s has %v", kind, judged, info.Dataset, factors)
	case dsName != "" && dsName != info.Dataset:
		return fmt.Errorf("%s was trained on %s, model %s on %s", kind, dsName, w.Model.Dir, info.Dataset)
	}
	return nil
}

// OracleFrom loads an oracle that is not the model's own: arg is an oracle
// directory (holding oracle.json), a model directory or an embedded model's
// name (its work folder's oracle, else its shipped one). It lets models of
// one dataset and size share one judge, as the faces VAE does the faces
// GAN's: numbers read by two oracles do not compare.
func (w *Workspace) OracleFrom(arg string) (*evaluate.Oracle, error) {
	dir := arg
	if _, err := os.Stat(filepath.Join(arg, evaluate.OracleSpec)); err != nil {
		if _, err := os.Stat(filepath.Join(arg, generator.InfoFile)); err == nil {
			dir = filepath.Join(arg, OracleDir)
		} else {
			shipped, err := models.Extract(arg, "")
			if err != nil {
				return nil, fmt.Errorf("--oracle %s: not an oracle directory (no %s), a model directory nor an embedded model (%v)", arg, evaluate.OracleSpec, models.Names())
			}
			dir = (&Workspace{Work: filepath.Join("work", arg), Shipped: shipped}).OracleDir()
		}
	}
	return evaluate.LoadOracle(dir, w.Model.Backend())
}

// Classifier loads the model's class classifier (work folder, then
// shipped) or, when there is none, trains one for steps steps on the
// training split of the model's dataset, measures its accuracy on the test
// split and saves it in the work folder. Its training state is
// checkpointed there too: a call after a killed training resumes it.
func (w *Workspace) Classifier(steps int, log io.Writer) (*evaluate.Classifier, error) {
	for _, root := range w.roots() {
		dir := filepath.Join(root, ClassifierDir)
		if _, err := os.Stat(filepath.Join(dir, evaluate.ClassifierSpec)); err == nil {
			return evaluate.LoadClassifier(dir, w.Model.Backend()) // present but broken: say so, do not retrain over it
		}
	}
	run := filepath.Join(w.Work, ClassifierDir)
	_, statErr := os.Stat(filepath.Join(run, evaluate.ClassifierStateFile))
	resume := statErr == nil
	info := w.Model.Info
	trainSet, err := info.OpenData(dataset.Options{Split: "train"})
	if err != nil {
		return nil, err
	}
	test, err := info.OpenData(dataset.Options{Split: "test"})
	if err != nil {
		return nil, err
	}
	if resume {
		fmt.Fprintf(log, "resuming the classifier's training from %s\n", run)
	}
	c, err := evaluate.TrainClassifier(trainSet, test, w.Model.Backend(), evaluate.ClassifierOptions{Steps: steps, Dir: run, Resume: resume, Log: log})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "classifier test accuracy: %.4f on %d images\n", c.TestAccuracy, c.TestN)
	return c, c.Save(run)
}
