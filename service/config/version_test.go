package config

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// The file the previous release's operator renders (v0.1.0: no
// schemaVersion yet) is accepted as it is.
func TestAcceptsTheFileOfThePreviousRelease(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/rendered-v0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("a v0.1.0 file is refused: %v", err)
	}
	if c.Generation != 3 || c.Workers.MaxInFlight != 48 {
		t.Errorf("generation %d, maxInFlight %d; want the file's 3 and 48", c.Generation, c.Workers.MaxInFlight)
	}
}

// A newer operator's file, read by an older pod mid-rollout, may hold
// fields this version does not know: they are ignored, the rest applies.
// The same unknown field in a file of this version is a typo: an error.
func TestUnknownFieldsAreFatalOnlyInFilesOfThisVersion(t *testing.T) {
	t.Parallel()
	body := "generation: 4\nworkers: {maxInFlight: 32, adaptive: true}\nnewSection: {x: 1}\n"

	newer := "schemaVersion: " + strconv.Itoa(SchemaVersion+1) + "\n" + body
	c, err := Parse([]byte(newer))
	if err != nil {
		t.Fatalf("a newer file with unknown fields: %v", err)
	}
	if c.Generation != 4 || c.Workers.MaxInFlight != 32 {
		t.Errorf("generation %d, maxInFlight %d; want the file's 4 and 32", c.Generation, c.Workers.MaxInFlight)
	}

	for _, same := range []string{"schemaVersion: " + strconv.Itoa(SchemaVersion) + "\n" + body, body} {
		if _, err := Parse([]byte(same)); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("unknown field in a file of this version or older: err = %v, want it named", err)
		}
	}

	// Validation still holds for a newer file.
	if _, err := Parse([]byte("schemaVersion: 99\nworkers: {maxInFlight: -1}\n")); err == nil {
		t.Error("a newer file with an invalid known value: no error")
	}
}

// The operator writes the version into every file it renders.
func TestMarshalWritesTheSchemaVersion(t *testing.T) {
	t.Parallel()
	data, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if schemaVersionOf(data) != SchemaVersion {
		t.Errorf("rendered file has schemaVersion %d, want %d:\n%s", schemaVersionOf(data), SchemaVersion, data)
	}
}
