// Package pseudocase makes retinal pseudo-cases: it adds lesions (a retinal
// detachment at a chosen position, haemorrhages, an enlarged optic cup) to
// images of a fundus generator by moving their latents with an editor, and
// proves the eye's structure was kept.
//
// The proof uses three judges, none of them the editor: the dataset's oracle
// reads every lesion factor before and after; a small segmenter, trained on
// rendered fundus images whose masks are exact, finds vessels, lesions and
// the optic disc in both images, so the vessel Dice outside the lesions and
// the disc shift can be measured. A request is turned into edit steps once
// per case from a calibration measured on other latents (open loop), so the
// oracle's after reading is a measurement rather than a target it was
// steered to.
//
// Every network call runs on fixed-size, padded batches, so a case's images
// and numbers depend only on its seed: shards of a run are byte-identical to
// the same cases of the whole run, and Merge joins them into the whole run's
// files (the summary recomputed from each shard's exact cases).
//
// This package trains only its segmenter (on request, never during a run);
// it does not fit editors (package edit and discover do) or oracles
// (package evaluate).
package pseudocase
