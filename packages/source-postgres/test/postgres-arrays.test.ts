import { BackhaulError } from '@backhaul/core';
import { parseArrayText } from '@backhaul/source-postgres';
import { describe, expect, it } from 'vitest';

// PostgreSQL's array text (array_out) → elements, without a server: the quoting and escaping rules.
describe('PostgreSQL array text', () => {
  it('splits plain elements, reads unquoted NULL as null and keeps a quoted "NULL" as text', () => {
    expect(parseArrayText('{}', 'a')).toEqual([]);
    expect(parseArrayText('{1,-2,3.5}', 'a')).toEqual(['1', '-2', '3.5']);
    expect(parseArrayText('{NULL,null,"NULL",""}', 'a')).toEqual([null, null, 'NULL', '']);
  });

  it('unquotes and unescapes delimiters, quotes, backslashes, braces and blanks', () => {
    expect(parseArrayText('{"a,b","say \\"hi\\"","back\\\\slash","{x}"," sp ",ünï}', 'a')).toEqual([
      'a,b',
      'say "hi"',
      'back\\slash',
      '{x}',
      ' sp ',
      'ünï',
    ]);
    expect(parseArrayText('{"2024-01-01 00:00:00+00",a\\,b}', 'a')).toEqual([
      '2024-01-01 00:00:00+00',
      'a,b',
    ]);
  });

  it('refuses what a list cannot hold exactly, naming the column', () => {
    for (const [text, why] of [
      ['{{1,2},{3,4}}', 'has more than one dimension'],
      ['[0:1]={5,6}', 'does not start at index 1'],
      ['[1:1][1:2]={{1,2}}', 'does not start at index 1'],
      ['1,2', 'is no array text'],
      ['{"open}', 'is no array text'],
    ] as const) {
      let error: unknown;
      try {
        parseArrayText(text, 'grid');
      } catch (caught) {
        error = caught;
      }
      expect(error, text).toBeInstanceOf(BackhaulError);
      expect((error as BackhaulError).code).toBe('query-failed');
      expect((error as BackhaulError).message).toContain(
        `Column "grid": the PostgreSQL array ${JSON.stringify(text)} ${why}`,
      );
    }
  });
});
