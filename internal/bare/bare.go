// Package bare is the baseline pacer-api is measured against: net/http and
// one pgxpool query per request, no middleware, no cache, no limits. It
// answers the same paths as pacer-api plus /const (a constant body: the
// ceiling of net/http on the machine). hack/loadgen serves it over a real
// socket; service/server's benchmark calls it in process, so both measure
// the same handler.
package bare

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

type user struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const cols = "id, name, email, version, created_at, updated_at"

var constBody = []byte(`{"id":1,"name":"constant","email":"constant@example.com","version":1}`)

// Handler answers the baseline's paths from pool.
func Handler(pool *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /const", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(constBody)
	})
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		var u user
		err := pool.QueryRow(r.Context(), "SELECT "+cols+" FROM users WHERE id = $1", id).
			Scan(&u.ID, &u.Name, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		write(w, http.StatusOK, u)
	})
	mux.HandleFunc("GET /v1/users", func(w http.ResponseWriter, r *http.Request) {
		var ids []int64
		for _, p := range strings.Split(r.URL.Query().Get("ids"), ",") {
			id, _ := strconv.ParseInt(p, 10, 64)
			ids = append(ids, id)
		}
		rows, err := pool.Query(r.Context(), "SELECT "+cols+" FROM users WHERE id = ANY($1)", ids)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var users []user
		for rows.Next() {
			var u user
			if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt); err != nil {
				break
			}
			users = append(users, u)
		}
		rows.Close()
		if rows.Err() != nil {
			http.Error(w, rows.Err().Error(), http.StatusInternalServerError)
			return
		}
		write(w, http.StatusOK, map[string]any{"users": users})
	})
	mux.HandleFunc("POST /v1/users", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name, Email string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var u user
		err := pool.QueryRow(r.Context(), "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING "+cols, in.Name, in.Email).
			Scan(&u.ID, &u.Name, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		write(w, http.StatusCreated, u)
	})
	return mux
}

func write(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
