/**
 * An id-safe short form of a name, for workflow and child workflow ids (`etl-maxime-labonne`): lower-case ASCII
 * letters and digits joined by single dashes, at most 40 characters, `author` when nothing is left. Pure, so
 * workflow code may use it too.
 */
export function slugOf(text: string): string {
  return (
    text
      .normalize('NFKD')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'author'
  );
}
