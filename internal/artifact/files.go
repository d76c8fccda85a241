package artifact

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/internal/atomicfile"
)

// Files is a network artifact inside its directory: a JSON spec beside a
// checksummed checkpoint of one variable scope. The oracle, the class
// classifier and the segmenter are stored this way; the one Save and Load
// keep their writing order and refusals the same.
type Files struct {
	Dir     string
	Spec    string // file name of the JSON spec
	Weights string // file name of the checkpoint
	Kind    string // the spec's kind, and the prefix of every error
	Format  int    // the format_version this build reads and writes
}

// SpecPath and WeightsPath are the two files' paths.
func (f Files) SpecPath() string    { return filepath.Join(f.Dir, f.Spec) }
func (f Files) WeightsPath() string { return filepath.Join(f.Dir, f.Weights) }

// Save writes the checkpoint of ctx's scope, then lets stamp record the
// format, kind and the weights' sha256 in spec, then writes spec, each file
// atomically. The spec comes last so that a reader never finds a spec
// whose weights are missing or older than it.
func (f Files) Save(ctx *context.Context, scope string, meta map[string]string, spec any, stamp func(format int, kind, sha string)) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", f.Kind, err)
	}
	if err := engine.SaveCheckpoint(ctx, f.WeightsPath(), scope, meta); err != nil {
		return err
	}
	sum, err := FileSHA256(f.WeightsPath())
	if err != nil {
		return fmt.Errorf("%s: %w", f.Kind, err)
	}
	stamp(f.Format, f.Kind, sum)
	raw, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", f.Kind, err)
	}
	return atomicfile.WriteFile(f.SpecPath(), append(raw, '\n'), atomicfile.DefaultPerm)
}

// Load reads the spec into spec, refuses it unless header (read from the
// decoded spec) gives this build's format, the right kind and the weights'
// true sha256, and loads the checkpoint into a fresh context. The caller
// then checks its own fields and that the weights fit them.
func (f Files) Load(spec any, header func() (format int, kind, sha string)) (*context.Context, map[string]string, error) {
	raw, err := os.ReadFile(f.SpecPath())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Kind, err)
	}
	if err := json.Unmarshal(raw, spec); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", f.Kind, f.SpecPath(), err)
	}
	format, kind, sha := header()
	if err := Check(f.SpecPath(), format, f.Format, kind, f.Kind, f.WeightsPath(), sha); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Kind, err)
	}
	ctx := context.New().Checked(false)
	meta, err := engine.LoadCheckpoint(ctx, f.WeightsPath())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Kind, err)
	}
	return ctx, meta, nil
}
