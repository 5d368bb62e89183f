package certs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/acme/autocert"
)

// PGCache is an autocert.Cache in PostgreSQL, shared by every replica of
// the service, so that each one serves every certificate and answers every
// http-01 and tls-alpn-01 challenge (autocert keeps both in its cache),
// whichever replica ordered it.
//
// Its contract, beyond autocert.Cache's (Get returns autocert.ErrCacheMiss
// for a key it does not hold; every method may be called concurrently):
// the first order for a name happens once across the fleet. A Get that
// misses a certificate takes a PostgreSQL advisory lock for its key and
// holds it until this replica Puts the key, or Release is called, or
// orderHold passes; a Get that misses while another replica holds it
// returns ErrOrdering instead (autocert calls Get under its own locks, so
// Get never waits on another replica). AwaitOrder, called before autocert,
// waits for another replica's order, then the certificate is read. The
// account key's lock is waited for in Get (a key is made in a moment).
// A lock belongs to its database session, so a replica that dies while
// ordering frees it, and another one orders.
type PGCache struct {
	pool *pgxpool.Pool // reads and writes
	// locks holds the sessions of orders (their locks) and of AwaitOrder's
	// waits, apart from pool: however many wait, a Put finds a session.
	locks *pgxpool.Pool

	mu   sync.Mutex
	held map[string]*pgxpool.Conn // keys this replica is ordering, with the session holding the lock
}

// orderHold bounds how long a lock is held for an order that is never Put
// (autocert gives up on an order after 5 minutes).
const orderHold = 5 * time.Minute

// schemaVersion is the schema this code reads and writes; the version row
// lets a later one migrate.
const schemaVersion = 1

// schemaLock is the advisory lock around schema creation, so that replicas
// starting at once do not create the tables twice.
const schemaLock = 0x6175746f64697363 // "autodisc"

// NewPGCache connects with libpq's environment (PGHOST, PGPORT,
// PGDATABASE, PGUSER, PGPASSWORD or PGPASSFILE, PGSSLMODE: no secret in
// the config file) and creates the schema if it is missing.
func NewPGCache(ctx context.Context) (*PGCache, error) {
	pool, err := newPool(ctx, 8)
	if err != nil {
		return nil, err
	}
	locks, err := newPool(ctx, maxOrderSessions)
	if err != nil {
		pool.Close()
		return nil, err
	}
	c := &PGCache{pool: pool, locks: locks, held: map[string]*pgxpool.Conn{}}
	if err := c.migrate(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	return c, nil
}

// maxOrderSessions bounds the database sessions of orders and of waits
// for them; past it, a wait waits for a session.
const maxOrderSessions = 64

func newPool(ctx context.Context, max int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig("") // libpq's environment
	if err != nil {
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	cfg.MaxConns = max
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	return pool, nil
}

func (c *PGCache) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`SELECT pg_advisory_xact_lock(` + fmt.Sprint(schemaLock) + `)`,
			`CREATE TABLE IF NOT EXISTS autodiscover_schema (version integer NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS autodiscover_cache (key text PRIMARY KEY, data bytea NOT NULL, updated timestamptz NOT NULL DEFAULT now())`,
			`CREATE TABLE IF NOT EXISTS autodiscover_orders (at timestamptz NOT NULL)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		var v int
		switch err := tx.QueryRow(ctx, `SELECT version FROM autodiscover_schema`).Scan(&v); {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO autodiscover_schema (version) VALUES ($1)`, schemaVersion)
			return err
		case err != nil:
			return err
		case v > schemaVersion:
			return fmt.Errorf("the schema is version %d, newer than this build's %d: upgrade this replica", v, schemaVersion)
		}
		return nil
	})
}

// Ping reports whether the store answers.
func (c *PGCache) Ping(ctx context.Context) error { return c.pool.Ping(ctx) }

// Close ends every session, and with them the locks held.
func (c *PGCache) Close() {
	c.mu.Lock()
	for k, conn := range c.held {
		conn.Release()
		delete(c.held, k)
	}
	c.mu.Unlock()
	c.locks.Close()
	c.pool.Close()
}

// ordered reports whether key is one an order makes (a certificate, or the
// account key), not a challenge token (autocert's "+http-01" and "+token"
// keys), which is written once and read by every replica.
func ordered(key string) bool {
	return !strings.HasSuffix(key, "+http-01") && !strings.HasSuffix(key, "+token")
}

func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("autodiscover-proxy order " + key))
	return int64(h.Sum64())
}

// ErrOrdering is Get's answer for a certificate another replica is
// ordering: the handshake that asked fails, and the next one (after
// AwaitOrder) is served the certificate.
var ErrOrdering = errors.New("certificate store: another replica is ordering this certificate")

// accountKey is autocert's cache key for the ACME account key.
const accountKey = "acme_account+key"

func (c *PGCache) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := get(ctx, c.pool, key)
	if !errors.Is(err, autocert.ErrCacheMiss) || !ordered(key) {
		return data, err
	}
	c.mu.Lock()
	mine := c.held[key] != nil
	c.mu.Unlock()
	if mine { // this replica is ordering it already
		return nil, autocert.ErrCacheMiss
	}
	// A miss: this replica may be the one to order. Take the order's lock,
	// then look again on the locked session.
	conn, err := c.locks.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	locked := true
	if key == accountKey {
		_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID(key))
	} else {
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID(key)).Scan(&locked)
	}
	if err != nil || !locked {
		conn.Release()
		if err == nil {
			err = ErrOrdering
		}
		return nil, err
	}
	data, err = get(ctx, conn, key)
	if !errors.Is(err, autocert.ErrCacheMiss) {
		unlock(conn, key)
		return data, err
	}
	c.mu.Lock()
	if c.held[key] != nil { // another of this replica's misses won
		c.mu.Unlock()
		unlock(conn, key)
		return nil, autocert.ErrCacheMiss
	}
	c.held[key] = conn
	c.mu.Unlock()
	time.AfterFunc(orderHold, func() { c.release(key, conn) })
	return nil, autocert.ErrCacheMiss
}

// AwaitOrder returns once no other replica is ordering key: at once when
// the store holds it or this replica orders it, else after the other
// replica's order (it is then in the store) or ctx's end.
func (c *PGCache) AwaitOrder(ctx context.Context, key string) error {
	c.mu.Lock()
	mine := c.held[key] != nil
	c.mu.Unlock()
	if mine {
		return nil
	}
	if _, err := get(ctx, c.pool, key); !errors.Is(err, autocert.ErrCacheMiss) {
		return err
	}
	conn, err := c.locks.Acquire(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID(key)); err != nil {
		conn.Release()
		return err
	}
	unlock(conn, key)
	return nil
}

func (c *PGCache) Put(ctx context.Context, key string, data []byte) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO autodiscover_cache (key, data) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, updated = now()`, key, data)
	c.Release(key)
	return err
}

func (c *PGCache) Delete(ctx context.Context, key string) error {
	_, err := c.pool.Exec(ctx, `DELETE FROM autodiscover_cache WHERE key = $1`, key)
	return err
}

// Release frees the lock this replica holds for key, if any: its order
// will not be Put (the host policy refused it, or the order failed).
func (c *PGCache) Release(key string) {
	c.mu.Lock()
	conn := c.held[key]
	c.mu.Unlock()
	if conn != nil {
		c.release(key, conn)
	}
}

func (c *PGCache) release(key string, conn *pgxpool.Conn) {
	c.mu.Lock()
	if c.held[key] != conn {
		c.mu.Unlock()
		return
	}
	delete(c.held, key)
	c.mu.Unlock()
	unlock(conn, key)
}

func unlock(conn *pgxpool.Conn, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID(key)); err != nil {
		conn.Conn().Close(ctx) // the session, and its lock, end with it
	}
	conn.Release()
}

// querier is a pool or one of its sessions.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func get(ctx context.Context, q querier, key string) ([]byte, error) {
	var data []byte
	err := q.QueryRow(ctx, `SELECT data FROM autodiscover_cache WHERE key = $1`, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

// paceLock is the advisory lock around the fleet's order window.
const paceLock = 0x6175746f70616365 // "autopace"

// Wait admits one order for the whole fleet (the CA counts per account,
// and the replicas share one): at most ordersPerWindow in any orderWindow,
// a full window at once, then each as the oldest leaves it.
func (c *PGCache) Wait(ctx context.Context) error {
	for {
		var wait time.Duration
		err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(paceLock)); err != nil {
				return err
			}
			window := fmt.Sprintf("%d seconds", int(orderWindow.Seconds()))
			if _, err := tx.Exec(ctx, `DELETE FROM autodiscover_orders WHERE at <= now() - $1::interval`, window); err != nil {
				return err
			}
			var n int
			var oldest *time.Time
			var now time.Time
			if err := tx.QueryRow(ctx, `SELECT count(*), min(at), now() FROM autodiscover_orders`).Scan(&n, &oldest, &now); err != nil {
				return err
			}
			if n < ordersPerWindow {
				_, err := tx.Exec(ctx, `INSERT INTO autodiscover_orders (at) VALUES (now())`)
				return err
			}
			wait = oldest.Add(orderWindow).Sub(now)
			return nil
		})
		if err != nil || wait <= 0 {
			return err
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}
