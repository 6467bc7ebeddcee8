import { BackhaulError, type Column, type RowValue } from '@backhaul/core';
import type { FieldDef } from 'pg';
import { arrayElementOids, columnFromField, scalarParser } from './postgres-types.js';

/**
 * PostgreSQL arrays as lists. An array travels as its text output (`array_out`): `{1,2,NULL}`,
 * elements quoted when they are empty, hold a delimiter, quote, backslash, brace or blank, or spell
 * NULL (`{"a,b","say \"hi\"",""}`), with backslash escapes inside and out of quotes.
 *
 * A Parquet LIST is one-dimensional and indexed from 1. PostgreSQL types an array column without its
 * dimensions, so the column is a list before any row is read, and a value a list cannot hold exactly —
 * a multi-dimensional array (`{{1,2},{3,4}}`), or one whose lower bound is not 1 (`[0:1]={1,2}`,
 * which the text shows as a leading `[lower:upper]=`) — fails the query with `query-failed`, naming
 * the column and saying how to select it instead (docs/type-mapping.md).
 */

const OPEN = 123; // {
const CLOSE = 125; // }
const COMMA = 44;
const QUOTE = 34;
const BACKSLASH = 92;

/** The elements of a one-dimensional array's text, each its text or null. */
export function parseArrayText(text: string, column: string): (string | null)[] {
  if (text.charCodeAt(0) !== OPEN || text.charCodeAt(text.length - 1) !== CLOSE) {
    throw notExact(column, text, text.startsWith('[') ? 'does not start at index 1' : 'is no array text');
  }
  const elements: (string | null)[] = [];
  const end = text.length - 1;
  if (end === 1) return elements;
  let at = 1;
  while (true) {
    const first = text.charCodeAt(at);
    if (first === OPEN) throw notExact(column, text, 'has more than one dimension');
    let value = '';
    let quoted = false;
    let escaped = false;
    if (first === QUOTE) {
      quoted = true;
      at++;
      let from = at;
      for (; at < end; at++) {
        const c = text.charCodeAt(at);
        if (c === BACKSLASH) {
          value += text.slice(from, at);
          from = ++at; // the escaped character is kept as it is
        } else if (c === QUOTE) {
          break;
        }
      }
      if (at >= end) throw notExact(column, text, 'is no array text');
      value += text.slice(from, at);
      at++;
    } else {
      let from = at;
      for (; at < end; at++) {
        const c = text.charCodeAt(at);
        if (c === COMMA) break;
        if (c === BACKSLASH) {
          escaped = true;
          value += text.slice(from, at);
          from = ++at;
        }
      }
      value += text.slice(from, at);
    }
    elements.push(!quoted && !escaped && value.length === 4 && value.toUpperCase() === 'NULL' ? null : value);
    if (at === end) return elements;
    if (text.charCodeAt(at) !== COMMA) throw notExact(column, text, 'is no array text');
    at++;
  }
}

function notExact(column: string, text: string, why: string): BackhaulError {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return new BackhaulError(
    'query-failed',
    `Column "${column}": the PostgreSQL array ${JSON.stringify(shown)} ${why}; a list holds only ` +
      `one-dimensional arrays indexed from 1. Select it as text ("${column}"::text) or flatten it ` +
      `(array_to_string, unnest) to read it.`,
  );
}

/** An array's text → the list of its elements, each read by the element type's parser. */
export type ListParser = (text: string) => RowValue[];

export function listParser(column: Column, parseElement: (text: string) => RowValue): ListParser {
  const name = column.name;
  return (text) => {
    const elements = parseArrayText(text, name);
    const list = new Array<RowValue>(elements.length);
    for (let k = 0; k < elements.length; k++) {
      const element = elements[k]!;
      list[k] = element === null ? null : parseElement(element);
    }
    return list;
  };
}

/** The list parser of a RowDescription field, when its type is an array the source reads as a list. */
export function listParserFor(
  field: Pick<FieldDef, 'name' | 'dataTypeID' | 'dataTypeModifier'>,
): ListParser | undefined {
  const elementOid = arrayElementOids.get(field.dataTypeID);
  const column = columnFromField(field);
  if (elementOid === undefined || column.type !== 'list') return undefined;
  return listParser(column, scalarParser(elementOid));
}

/**
 * The row path's arrays, which pg hands over as their text: each list column's values parsed in
 * place (a value a list cannot hold fails here, with the column's name).
 */
export function parseListsInRows(parsers: readonly (ListParser | undefined)[], rows: RowValue[][]): void {
  for (let c = 0; c < parsers.length; c++) {
    const parse = parsers[c];
    if (!parse) continue;
    for (const row of rows) {
      const text = row[c];
      if (typeof text === 'string') row[c] = parse(text);
    }
  }
}
