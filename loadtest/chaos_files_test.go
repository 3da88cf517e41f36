//go:build chaos

package loadtest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// checkFiles reads back every object under its final name in the data
// directory: each Parquet file must open with a valid footer and each JSON
// manifest must parse. Kills land during writes; a half-written file may be
// left only under a temporary ".tmp-" name, never under a final one. It
// returns the problems, and how many files of each kind it checked.
func checkFiles(dataDir string) (problems []string, parquetFiles, manifests, temps int) {
	objects := filepath.Join(dataDir, "objects")
	if _, err := os.Stat(objects); err != nil {
		objects = dataDir
	}
	err := filepath.WalkDir(objects, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			temps++
		case strings.HasSuffix(name, ".parquet"):
			parquetFiles++
			f, err := os.Open(path)
			if err != nil {
				problems = append(problems, err.Error())
				return nil
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				problems = append(problems, err.Error())
				return nil
			}
			if _, err := parquet.OpenFile(f, st.Size()); err != nil {
				problems = append(problems, fmt.Sprintf("%s: not a complete Parquet file under its final name: %v", path, err))
			}
		case strings.HasSuffix(name, ".json"):
			manifests++
			data, err := os.ReadFile(path)
			if err != nil {
				problems = append(problems, err.Error())
				return nil
			}
			if !json.Valid(data) {
				problems = append(problems, fmt.Sprintf("%s: not complete JSON under its final name (%d bytes)", path, len(data)))
			}
		}
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Sprintf("walk %s: %v", objects, err))
	}
	return problems, parquetFiles, manifests, temps
}
