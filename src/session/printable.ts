/**
 * Client-sent text (a Host header, a user agent) as it may be written to a log or a terminal:
 * quoted, cut to `max` characters, and everything outside printable ASCII escaped, C1 controls
 * such as NEL and CSI included (JSON.stringify leaves those as they are).
 */
export function printable(text: string, max = 100): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  const escaped = cut.replace(/[^\x20-\x7e]|["\\]/g, (c) =>
    c === '"' || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `"${escaped}"`;
}
