package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrUnavailable means the database could not be reached or the
	// connection broke: the request may succeed later.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTimeout means the statement or the request ran out of time.
	ErrTimeout = errors.New("database query timed out")
	// ErrInvalidText means PostgreSQL refused a text value (a NUL byte, or
	// a character the database encoding cannot hold): the input is wrong.
	ErrInvalidText = errors.New("text holds a character the database cannot store")
	// ErrConflict means the transaction lost a deadlock or serialization
	// race and was rolled back, even after a retry: nothing was written and
	// the same request may succeed later.
	ErrConflict = errors.New("transaction conflicted with a concurrent one")
)

// PostgreSQL error codes this package maps.
const (
	codeUniqueViolation = "23505"
	codeQueryCanceled   = "57014" // statement_timeout
	codeAdminShutdown   = "57P01"
	codeCannotConnect   = "57P03"
	// Text PostgreSQL cannot store: U+0000 (22P05 untranslatable_character
	// in a text value, 22021 character_not_in_repertoire from the protocol).
	codeCharNotInRepertoire  = "22021"
	codeUntranslatableChar   = "22P05"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
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
		case codeCharNotInRepertoire, codeUntranslatableChar:
			return errors.Join(ErrInvalidText, err)
		case codeSerializationFailure, codeDeadlockDetected:
			return errors.Join(ErrConflict, err)
		}
		return err
	}
	if errors.Is(err, ErrDuplicateEmail) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, ErrInvalidText) || errors.Is(err, ErrConflict) {
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

// retryBackoff is the most a retry waits after a lost conflict: at once,
// it races the transactions the loss woke (they wait on its rows) and can
// close the same cycle with the winner again.
const retryBackoff = 20 * time.Millisecond

// retryConflict runs write once more if it lost a deadlock or serialization
// race (PostgreSQL rolled it back, so running it again is safe), after a
// random wait of up to retryBackoff that lets the winner go first. A
// second loss is returned as ErrConflict.
func retryConflict(ctx context.Context, write func() error) error {
	err := write()
	if !errors.Is(err, ErrConflict) {
		return err
	}
	t := time.NewTimer(retryBackoff/2 + rand.N(retryBackoff/2))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-t.C:
	}
	return write()
}
