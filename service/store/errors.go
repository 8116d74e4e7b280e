package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrUnavailable means the database could not be reached or the
	// connection broke: the request may succeed later.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTimeout means the statement or the request ran out of time.
	ErrTimeout = errors.New("database query timed out")
)

// PostgreSQL error codes this package maps.
const (
	codeUniqueViolation = "23505"
	codeQueryCanceled   = "57014" // statement_timeout
	codeAdminShutdown   = "57P01"
	codeCannotConnect   = "57P03"
)

// mapError turns driver errors into this package's sentinel errors, keeping
// the original in the chain for logs.
func mapError(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	// A connection that could not be opened is an unreachable database,
	// checked first: a dial or connect timeout wraps DeadlineExceeded too,
	// and must not read as the request running out of time. (pgxpool's
	// Acquire returns the ConnectError of the connection it tried to open.)
	// Only a caller that gave up (Canceled) is left to the check below.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && !errors.Is(err, context.Canceled) {
		return errors.Join(ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errors.Join(ErrTimeout, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return ErrDuplicateEmail
		case codeQueryCanceled:
			return errors.Join(ErrTimeout, err)
		case codeAdminShutdown, codeCannotConnect:
			return errors.Join(ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, ErrDuplicateEmail) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnavailable) {
		return err
	}
	var be *BatchError
	if errors.As(err, &be) {
		return err
	}
	// Anything else from the driver is a connection that failed to open or
	// broke mid-query: the database is unavailable, not the request wrong.
	return errors.Join(ErrUnavailable, err)
}
