// Typed queries built and compiled once, run many times with new values. Building and compiling a
// Kysely query costs more than running it on SQLite; the hot paths (confirming a token) skip both.
import type { Compilable, CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';
import type { Database } from './schema.ts';

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
): (db: Executor, values: Params) => Promise<QueryResult<Row>> {
  const compiledByDialect = new Map<
    unknown,
    { query: CompiledQuery<Row>; slots: Array<string | null> }
  >();
  const param = ((name: string) => `${SENTINEL}${name}`) as <Name extends keyof Params & string>(
    name: Name,
  ) => Params[Name];

  return (db, values) => {
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
    const { query, slots } = prepared;
    const parameters = query.parameters.map((fixed, i) => {
      const name = slots[i];
      return name === null || name === undefined
        ? fixed
        : (values as Record<string, unknown>)[name];
    });
    return db.executeQuery<Row>({ ...query, parameters });
  };
}
