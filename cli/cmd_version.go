package cli

import (
	"fmt"
	"runtime"
)

// VersionCmd prints mhrun's version.
type VersionCmd struct{}

// Run prints the version and the Go that built it.
func (c *VersionCmd) Run(app *App) error {
	_, err := fmt.Fprintf(app.Stdout, "mhrun %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
