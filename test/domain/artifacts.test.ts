import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { artifactId, checksumOf, stableStringify } from '../../src/domain/artifacts';

describe('artifact ids and checksums', () => {
  test('checksums ignore key order but not values', () => {
    assert.equal(checksumOf({ a: 1, b: [1, { c: 2, d: 3 }] }), checksumOf({ b: [1, { d: 3, c: 2 }], a: 1 }));
    assert.notEqual(checksumOf({ a: 1 }), checksumOf({ a: 2 }));
    assert.notEqual(checksumOf([1, 2]), checksumOf([2, 1]));
    assert.match(checksumOf('x'), /^sha256:[0-9a-f]{64}$/);
  });

  test('undefined fields are dropped like JSON does', () => {
    assert.equal(stableStringify({ a: 1, b: undefined }), '{"a":1}');
  });

  test('ids are content addressed per kind', () => {
    const sum = checksumOf({ x: 1 });
    assert.equal(artifactId('model', sum), artifactId('model', sum));
    assert.notEqual(artifactId('model', sum), artifactId('instruction-dataset', sum));
  });
});
