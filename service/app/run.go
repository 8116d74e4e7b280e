// Package app wires pacer-api together: flags and config, the components,
// the API and admin servers, config reloads and graceful shutdown.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pacer-dev/pacer/service/config"
)

// Run is pacer-api's main: it returns when ctx ends (after a graceful
// shutdown) or on a fatal error. args exclude the program name.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("pacer-api", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "path of the YAML config file (defaults apply without one); watched for changes")
	printConfig := flags.Bool("print-config", false, "print the effective config (no secrets) and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flags.Args())
	}

	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	if *printConfig {
		out, err := config.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}

	a, err := Start(ctx, Options{Config: cfg, ConfigPath: *configPath, Getenv: getenv, LogOutput: stderr})
	if err != nil {
		return err
	}
	return a.Wait()
}
