// Package store keeps users in PostgreSQL through a swappable pgxpool, and
// applies the embedded schema migrations.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// User is one row of the users table.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewUser holds the fields of a user to create.
type NewUser struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// UserPatch holds the fields to change; nil leaves a field as it is.
type UserPatch struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
}

var (
	// ErrNotFound means no user has the id.
	ErrNotFound = errors.New("user not found")
	// ErrDuplicateEmail means another user has the email.
	ErrDuplicateEmail = errors.New("email already in use")
)

// BatchError says which item of a batch create failed; nothing was written.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

const userColumns = "id, name, email, version, created_at, updated_at"

// Users is the users repository.
type Users struct {
	pools *Pools
}

// NewUsers reads and writes users through pools.
func NewUsers(pools *Pools) *Users { return &Users{pools: pools} }

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, mapError(err)
}

// Get returns the user with id.
func (s *Users) Get(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.pools.use(func(p *pgxpool.Pool) error {
		var err error
		u, err = scanUser(p.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
		return err
	})
	return u, err
}

// GetMany returns the users among ids that exist, in the order of ids.
func (s *Users) GetMany(ctx context.Context, ids []int64) ([]User, error) {
	found := make(map[int64]User, len(ids))
	err := s.pools.use(func(p *pgxpool.Pool) error {
		rows, err := p.Query(ctx, "SELECT "+userColumns+" FROM users WHERE id = ANY($1)", ids)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			found[u.ID] = u
		}
		return mapError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	users := make([]User, 0, len(found))
	for _, id := range ids {
		if u, ok := found[id]; ok {
			users = append(users, u)
			delete(found, id) // a repeated id is listed once
		}
	}
	return users, nil
}

// List returns up to limit users with id greater than after, by id.
func (s *Users) List(ctx context.Context, after int64, limit int) ([]User, error) {
	users := make([]User, 0, limit)
	err := s.pools.use(func(p *pgxpool.Pool) error {
		rows, err := p.Query(ctx, "SELECT "+userColumns+" FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return mapError(rows.Err())
	})
	return users, err
}

// Create inserts a user.
func (s *Users) Create(ctx context.Context, n NewUser) (User, error) {
	var u User
	err := retryConflict(ctx, func() error {
		return s.pools.use(func(p *pgxpool.Pool) error {
			var err error
			u, err = scanUser(p.QueryRow(ctx,
				"INSERT INTO users (name, email) VALUES ($1, $2) RETURNING "+userColumns, n.Name, n.Email))
			return err
		})
	})
	return u, err
}

// CreateBatch inserts every item in one transaction, or none, and returns
// the users in the order of items. On failure the error is a *BatchError
// naming the first bad item (by its position in items).
//
// Rows are inserted in a canonical order (by lower(email), the unique key),
// so two batches that share emails wait for each other instead of
// deadlocking, whatever order their callers listed them in. A deadlock or
// serialization failure that happens anyway is retried once.
func (s *Users) CreateBatch(ctx context.Context, items []NewUser) ([]User, error) {
	order := insertOrder(items)
	var users []User
	err := retryConflict(ctx, func() error {
		users = make([]User, len(items))
		return s.pools.use(func(p *pgxpool.Pool) error {
			return mapError(pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
				return insertBatch(ctx, tx, items, order, users)
			}))
		})
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// insertOrder returns the positions of items sorted by lower(email), the
// order every batch takes the unique index's entries in.
func insertOrder(items []NewUser) []int {
	keys := make([]string, len(items))
	order := make([]int, len(items))
	for i, n := range items {
		keys[i] = strings.ToLower(n.Email)
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	return order
}

// insertBatch inserts items in the given order, filling users[i] for
// items[i]. One round trip for all inserts; results come back in the order
// sent, so the first failing result is the bad item.
func insertBatch(ctx context.Context, tx pgx.Tx, items []NewUser, order []int, users []User) error {
	batch := &pgx.Batch{}
	for _, i := range order {
		n := items[i]
		batch.Queue("INSERT INTO users (name, email) VALUES ($1, $2) RETURNING "+userColumns, n.Name, n.Email)
	}
	results := tx.SendBatch(ctx, batch)
	for _, i := range order {
		u, err := scanUser(results.QueryRow())
		if err != nil {
			_ = results.Close()
			if errors.Is(err, ErrDuplicateEmail) || errors.Is(err, ErrInvalidText) {
				return &BatchError{Index: i, Err: err}
			}
			return err
		}
		users[i] = u
	}
	return results.Close()
}

// Update applies patch to the user with id and bumps its version.
func (s *Users) Update(ctx context.Context, id int64, patch UserPatch) (User, error) {
	var u User
	err := retryConflict(ctx, func() error {
		return s.pools.use(func(p *pgxpool.Pool) error {
			var err error
			u, err = scanUser(p.QueryRow(ctx, `UPDATE users SET
				name = COALESCE($2, name),
				email = COALESCE($3, email),
				version = version + 1,
				updated_at = now()
				WHERE id = $1 RETURNING `+userColumns, id, patch.Name, patch.Email))
			return err
		})
	})
	return u, err
}

// Delete removes the user with id and returns the version it had.
func (s *Users) Delete(ctx context.Context, id int64) (version int64, err error) {
	err = s.pools.use(func(p *pgxpool.Pool) error {
		err := p.QueryRow(ctx, "DELETE FROM users WHERE id = $1 RETURNING version", id).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return mapError(err)
	})
	return version, err
}

// Ping checks that the database answers.
func (s *Users) Ping(ctx context.Context) error {
	return s.pools.use(func(p *pgxpool.Pool) error { return mapError(p.Ping(ctx)) })
}
