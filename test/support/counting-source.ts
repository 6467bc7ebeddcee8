import type { DataSource } from '@backhaul/core';

/** Counts the queries that reach the database, so "ran once" is a fact, not an inference. */
export function countingSource(inner: DataSource): DataSource & { queries: string[] } {
  const queries: string[] = [];
  return {
    specificationVersion: 'v1',
    name: `counting-${inner.name}`,
    queries,
    query: (request) => {
      queries.push(request.sql);
      return inner.query(request);
    },
    close: () => inner.close(),
  };
}
