package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/pacer-dev/pacer/service/config"
)

// ConfigHash identifies c's content regardless of its generation, so the
// operator bumps the generation only when something else changed.
func ConfigHash(c config.Config) string {
	c.Generation = 0
	return hashJSON(c)
}

// RestartHash identifies what running pods cannot pick up live: here, the
// versions of the Secrets whose values reach them as environment variables.
// Secret contents are never hashed, only their resourceVersions.
func RestartHash(secretVersions map[string]string) string {
	return hashJSON(secretVersions)
}

func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain data is hashed here; a failure is a programming error.
		panic(fmt.Sprintf("render: hash %T: %v", v, err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
