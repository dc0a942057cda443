// Typed queries built and compiled once, run many times with new values. Building and compiling a
// Kysely query costs more than running it on SQLite; the hot paths (confirming a token) skip both.
import type SQLite from 'better-sqlite3';
import type { Compilable, CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';
import type { Database } from './schema.ts';

/** What a synchronous SQLite transaction's statements run through (see `Db.sqlite`). */
export interface SyncSqliteRunner {
  /** Compiles the queries (SQLite's dialect); never executes through Kysely. */
  kysely: Kysely<Database>;
  /** The same prepared-statement cache Kysely's queries use. */
  prepare(sqlText: string): SQLite.Statement;
}

export interface SyncSqlite {
  /**
   * Runs `work` in one synchronous transaction; rolled back if it throws. `work` may run twice
   * (when another work of its group throws, the group is undone and runs again), so it must touch
   * nothing but the database.
   */
  transaction<T>(work: (run: SyncSqliteRunner) => T): Promise<T>;
}

export interface PreparedQuery<Params, Row> {
  (db: Executor, values: Params): Promise<QueryResult<Row>>;
  /** The same statement run synchronously inside `SyncSqlite.transaction`. */
  sync(run: SyncSqliteRunner, values: Params): QueryResult<Row>;
}

type Executor = Kysely<Database> | Transaction<Database>;

const SENTINEL = '\u0000mailproof-param:';

/**
 * `build` receives `param(name)`, a placeholder typed as the column's value; every other value in
 * the query is fixed when it is first compiled (once per dialect).
 */
export function preparedQuery<Params extends Record<string, unknown>, Row>(
  build: (
    db: Executor,
    param: <Name extends keyof Params & string>(name: Name) => Params[Name],
  ) => Compilable<Row>,
): PreparedQuery<Params, Row> {
  const compiledByDialect = new Map<
    unknown,
    { query: CompiledQuery<Row>; slots: Array<string | null> }
  >();
  const param = ((name: string) => `${SENTINEL}${name}`) as <Name extends keyof Params & string>(
    name: Name,
  ) => Params[Name];

  function prepare(db: Executor) {
    // Each Kysely instance has one dialect; transactions share their parent's adapter.
    const key = db.getExecutor().adapter;
    let prepared = compiledByDialect.get(key);
    if (!prepared) {
      const query = build(db, param).compile();
      const slots = query.parameters.map((value) =>
        typeof value === 'string' && value.startsWith(SENTINEL)
          ? value.slice(SENTINEL.length)
          : null,
      );
      prepared = { query, slots };
      compiledByDialect.set(key, prepared);
    }
    return prepared;
  }

  function parametersFor(
    { query, slots }: { query: CompiledQuery<Row>; slots: Array<string | null> },
    values: Params,
  ): unknown[] {
    return query.parameters.map((fixed, i) => {
      const name = slots[i];
      return name === null || name === undefined
        ? fixed
        : (values as Record<string, unknown>)[name];
    });
  }

  const run = ((db: Executor, values: Params) => {
    const prepared = prepare(db);
    return db.executeQuery<Row>({ ...prepared.query, parameters: parametersFor(prepared, values) });
  }) as PreparedQuery<Params, Row>;

  // What Kysely's SQLite driver does with a compiled query, minus the asynchronous layers.
  run.sync = (sqlite, values) => {
    const prepared = prepare(sqlite.kysely);
    const statement = sqlite.prepare(prepared.query.sql);
    const parameters = parametersFor(prepared, values);
    if (statement.reader) return { rows: statement.all(parameters) as Row[] };
    const { changes, lastInsertRowid } = statement.run(parameters);
    return {
      rows: [],
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
    };
  };
  return run;
}
