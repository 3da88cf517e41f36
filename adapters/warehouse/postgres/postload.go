package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/windrow/windrow/adapters/warehouse"
)

// postLoadParams are the named parameters of post-load SQL, in the order
// of their positions ($1 …) and of postLoadArgs, and the PostgreSQL types
// they are bound as.
var postLoadParams = []struct{ name, cast string }{
	{"window_start", "timestamptz"},
	{"window_end", "timestamptz"},
	{"policy", "text"},
	{"revision", "bigint"},
}

// postLoadArgs are the values of postLoadParams for b.
func postLoadArgs(b warehouse.Batch) []any {
	return []any{b.WindowStart.UTC(), b.WindowEnd.UTC(), b.Policy, int64(b.Revision)}
}

// bindPostLoad rewrites the named parameters of a post-load statement
// ($window_start, $window_end, $policy, $revision) as typed positional
// ones ($1::timestamptz, $2::timestamptz, $3::text, $4::bigint: the
// positions of postLoadArgs, whether the statement uses them or not).
// Parameters inside string literals, quoted identifiers, comments and
// dollar-quoted strings are left alone, and so is any other $word.
func bindPostLoad(stmt string) string {
	var out strings.Builder
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"':
			j := skipQuoted(stmt, i, c)
			out.WriteString(stmt[i:j])
			i = j
		case c == '-' && strings.HasPrefix(stmt[i:], "--"):
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = len(stmt) - i
			}
			out.WriteString(stmt[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(stmt[i:], "/*"):
			j := strings.Index(stmt[i+2:], "*/")
			end := len(stmt)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			out.WriteString(stmt[i:end])
			i = end
		case c == '$':
			word := identAt(stmt, i+1)
			if i+1+len(word) < len(stmt) && stmt[i+1+len(word)] == '$' {
				// A dollar quote: $$…$$ or $tag$…$tag$.
				tag := stmt[i : i+2+len(word)]
				end := strings.Index(stmt[i+len(tag):], tag)
				j := len(stmt)
				if end >= 0 {
					j = i + len(tag) + end + len(tag)
				}
				out.WriteString(stmt[i:j])
				i = j
				continue
			}
			n, cast := 0, ""
			for j, p := range postLoadParams {
				if p.name == word {
					n, cast = j+1, p.cast
				}
			}
			if cast == "" {
				out.WriteByte(c)
				i++
				continue
			}
			out.WriteString("($" + strconv.Itoa(n) + "::" + cast + ")")
			i += 1 + len(word)
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String()
}

// skipQuoted returns the index after the quoted text starting at i ('…' or
// "…", a doubled quote escapes it).
func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// identAt is the identifier characters of s from i on.
func identAt(s string, i int) string {
	j := i
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
		j++
	}
	return s[i:j]
}

// PostLoadRolePrefix starts the name of every post-load role.
const PostLoadRolePrefix = "windrow_pl_"

// postLoadRoleName is the name of the role post-load SQL of loads into
// table (in schema, of database db) runs as: PostLoadRolePrefix, up to 30
// characters of the table name and 8 hex digits of a hash of all three
// (roles belong to the whole server).
func postLoadRoleName(db, schema, table string) string {
	sum := sha256.Sum256([]byte(db + "\x00" + schema + "\x00" + table))
	return PostLoadRolePrefix + table[:min(len(table), 30)] + "_" + hex.EncodeToString(sum[:4])
}

// postLoadRole is a table's post-load role, as made and checked.
type postLoadRole struct {
	name   string // unquoted
	ledger string // the ledger, quoted and qualified
}

func (r postLoadRole) sql() string { return pgx.Identifier{r.name}.Sanitize() }

// PostLoadRole returns the role that the post-load SQL of loads into table
// runs as, making it first if missing (see ensureRole).
func (w *Warehouse) PostLoadRole(ctx context.Context, table string) (string, error) {
	t, err := parseTable(table)
	if err != nil {
		return "", err
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", w.name, classify(err))
	}
	defer conn.Release()
	if err := w.ensureLedger(ctx, conn); err != nil {
		return "", err
	}
	r, err := w.ensureRole(ctx, conn, t)
	return r.name, err
}

// GrantPostLoad lets the post-load SQL of loads into table query and
// change tables (SELECT, INSERT, UPDATE, DELETE), such as the rollups it
// keeps: it grants those rights to the table's post-load role, made first
// if missing. The ledger cannot be granted.
func (w *Warehouse) GrantPostLoad(ctx context.Context, table string, tables ...string) error {
	t, err := parseTable(table)
	if err != nil {
		return err
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", w.name, classify(err))
	}
	defer conn.Release()
	if err := w.ensureLedger(ctx, conn); err != nil {
		return err
	}
	r, err := w.ensureRole(ctx, conn, t)
	if err != nil {
		return err
	}
	for _, name := range tables {
		g, err := parseTable(name)
		if err != nil {
			return err
		}
		if g.schema != "" {
			if _, err := conn.Exec(ctx, `GRANT USAGE ON SCHEMA "`+g.schema+`" TO `+r.sql()); err != nil {
				return fmt.Errorf("grant %s the schema %s: %w", r.name, g.schema, classify(err))
			}
		}
		if _, err := conn.Exec(ctx, `GRANT SELECT, INSERT, UPDATE, DELETE ON `+g.sql()+` TO `+r.sql()); err != nil {
			return fmt.Errorf("grant %s the table %s: %w", r.name, g, classify(err))
		}
	}
	return nil
}

// ensureRole makes the post-load role of t if it is missing (NOLOGIN, a
// comment naming the table), makes the connection's user a member (to
// hand it the post-load function: PostgreSQL 16 does not make the creator
// of a role one), and grants it USAGE on t's schema and SELECT, INSERT,
// UPDATE and DELETE on t if it exists (remembered only then); then checks that it cannot touch the ledger or
// the server's files. Once per Warehouse and table, under the DDL lock,
// in a transaction of its own. The user needs CREATEROLE (or to be a
// superuser) the first time.
func (w *Warehouse) ensureRole(ctx context.Context, conn *pgxpool.Conn, t tableName) (postLoadRole, error) {
	if r, ok := w.roles.Load(t.String()); ok {
		return r.(postLoadRole), nil
	}
	var r postLoadRole
	tableExists := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := lockXact(ctx, tx, lockDDL); err != nil {
			return err
		}
		var db, ledgerSchema, schema string
		if err := tx.QueryRow(ctx, `SELECT current_database(), current_schema(), coalesce(nullif($1, ''), current_schema())`, t.schema).
			Scan(&db, &ledgerSchema, &schema); err != nil {
			return fmt.Errorf("schema of %s: %w", t, classify(err))
		}
		r = postLoadRole{name: postLoadRoleName(db, schema, t.table)}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, r.name).Scan(&exists); err != nil {
			return fmt.Errorf("find role %s: %w", r.name, classify(err))
		}
		qualified := pgx.Identifier{schema, t.table}.Sanitize()
		if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, qualified).Scan(&tableExists); err != nil {
			return fmt.Errorf("find table %s: %w", t, classify(err))
		}
		var stmts []string
		if !exists {
			stmts = append(stmts, `CREATE ROLE `+r.sql()+` NOLOGIN NOINHERIT`,
				`COMMENT ON ROLE `+r.sql()+` IS `+quoteLiteral("windrow: post-load SQL of loads into "+db+"."+schema+"."+t.table))
		}
		stmts = append(stmts, `GRANT `+r.sql()+` TO CURRENT_USER`,
			`GRANT USAGE ON SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+r.sql())
		if tableExists { // the first load makes it, then grants
			stmts = append(stmts, `GRANT SELECT, INSERT, UPDATE, DELETE ON `+qualified+` TO `+r.sql())
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w: post-load role %s for %s: %s: %w (the loader's user needs CREATEROLE)", warehouse.ErrPostLoad, r.name, t, stmt, classify(err))
			}
		}
		r.ledger = pgx.Identifier{ledgerSchema, ledgerTable}.Sanitize()
		return checkRole(ctx, tx, r)
	})
	if err != nil {
		return postLoadRole{}, err
	}
	if tableExists {
		w.roles.Store(t.String(), r)
	}
	return r, nil
}

// checkRole refuses a post-load role that may change the ledger or the
// server's files: an operator may have granted it more than it should
// have. Run in ensureRole and in every load's transaction.
func checkRole(ctx context.Context, tx pgx.Tx, r postLoadRole) error {
	var unsafe bool
	if err := tx.QueryRow(ctx, `SELECT r.rolsuper OR r.rolbypassrls
		OR pg_catalog.has_table_privilege(r.oid, $2, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
		OR pg_catalog.pg_has_role(r.oid, 'pg_read_server_files', 'USAGE')
		OR pg_catalog.pg_has_role(r.oid, 'pg_write_server_files', 'USAGE')
		OR pg_catalog.pg_has_role(r.oid, 'pg_execute_server_program', 'USAGE')
		FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1`, r.name, r.ledger).Scan(&unsafe); err != nil {
		return fmt.Errorf("%w: check post-load role %s: %w", warehouse.ErrPostLoad, r.name, classify(err))
	}
	if unsafe {
		return fmt.Errorf("%w: post-load role %s may change the ledger %s or the server's files (superuser, BYPASSRLS, a grant on the ledger, "+
			"or membership of pg_read_server_files, pg_write_server_files or pg_execute_server_program): revoke that",
			warehouse.ErrPostLoadRefused, r.name, r.ledger)
	}
	return nil
}

// quoteLiteral is s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// The post-load function: each post-load statement runs through it, with
// EXECUTE, as its owner, the table's post-load role. It is made in the
// load's transaction in the session's temp schema (so it is gone with the
// session, which the load ends), owned by the role, and callable by nobody
// else. A SECURITY DEFINER function cannot SET ROLE, RESET ROLE or SET
// SESSION AUTHORIZATION, so a statement cannot get back to the loader's
// rights; COMMIT and ROLLBACK fail in a function too.
const (
	postLoadFunc = `pg_temp.windrow_post_load(pg_catalog.text, pg_catalog.timestamptz, pg_catalog.timestamptz, pg_catalog.text, pg_catalog.int8)`
	postLoadBody = `BEGIN EXECUTE stmt USING window_start, window_end, policy, revision; END`
)

// postLoadSetup checks r (checkRole), makes the post-load function, owned
// by r, and returns its oid.
func postLoadSetup(ctx context.Context, tx pgx.Tx, r postLoadRole) (uint32, error) {
	if err := checkRole(ctx, tx, r); err != nil {
		return 0, err
	}
	for _, stmt := range []string{
		`CREATE FUNCTION pg_temp.windrow_post_load(stmt pg_catalog.text, window_start pg_catalog.timestamptz, window_end pg_catalog.timestamptz,
			policy pg_catalog.text, revision pg_catalog.int8) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS ` + quoteLiteral(postLoadBody),
		`REVOKE ALL ON FUNCTION ` + postLoadFunc + ` FROM PUBLIC`,
		`ALTER FUNCTION ` + postLoadFunc + ` OWNER TO ` + r.sql(),
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("%w: post-load function as %s: %w", warehouse.ErrPostLoad, r.name, classify(err))
		}
	}
	var oid uint32
	if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regprocedure($1)::pg_catalog.oid`, postLoadFunc).Scan(&oid); err != nil {
		return 0, fmt.Errorf("%w: post-load function: %w", warehouse.ErrPostLoad, classify(err))
	}
	return oid, nil
}

// postLoadIntact reports whether the post-load function is still the one
// postLoadSetup made: the role owns it, so a statement could have altered
// it (SECURITY INVOKER would run the next statement with the loader's
// rights) or replaced it. Every name is qualified: the statement may have
// changed the search path or made temp tables (RESET ALL before undoes
// the first).
func postLoadIntact(ctx context.Context, tx pgx.Tx, r postLoadRole, oid uint32) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT p.prosecdef AND p.proconfig IS NULL AND p.prosrc OPERATOR(pg_catalog.=) $3
			AND p.proowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $2)
			AND pg_catalog.to_regprocedure($4)::pg_catalog.oid OPERATOR(pg_catalog.=) p.oid
		FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) $1`, oid, r.name, postLoadBody, postLoadFunc).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return ok, err
}
