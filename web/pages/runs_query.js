/**
 * The runs list's URL parameters -> the API's filter parameters. The search box takes free
 * words (full-text search) and `key=value`, `key!=value`, `key>value`, `key>=value`,
 * `key<value`, `key<=value` words on any metadata key (a bare key is `start.<key>`, as in the
 * API); values are JSON when they parse (numbers, true, "quoted text"), text otherwise.
 */

const OPERATORS = [
  [">=", "ge"],
  ["<=", "le"],
  ["!=", "noteq"],
  [">", "gt"],
  ["<", "lt"],
  ["=", "eq"],
];

/** Split the search box into free text and conditions; "quoted phrases" stay whole. */
export function parseWords(q) {
  const conditions = [];
  const free = [];
  const tokens = q.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
  for (const token of tokens) {
    const found = OPERATORS.map(([op, name]) => [token.indexOf(op), op, name])
      .filter(([at]) => at > 0)
      .sort((a, b) => a[0] - b[0] || b[1].length - a[1].length)[0];
    if (found) {
      const [at, op, name] = found;
      conditions.push({ key: token.slice(0, at), op: name, value: jsonish(token.slice(at + op.length)) });
    } else {
      free.push(token.replace(/^"|"$/g, ""));
    }
  }
  return { text: free.join(" "), conditions };
}

function jsonish(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The day after an ISO date, so that "until 2026-12-03" includes that whole day. */
function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) throw new Error(`"${date}" is not a date (YYYY-MM-DD)`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** URLSearchParams of API filters for the list's view parameters; throws on bad input. */
export function runsQuery(params, timezone) {
  const out = new URLSearchParams();
  const add = (query, condition) => {
    for (const [field, value] of Object.entries(condition)) {
      out.append(`filter[${query}][condition][${field}]`, JSON.stringify(value));
    }
  };
  const { text, conditions } = parseWords(params.get("q") ?? "");
  if (text) add("fulltext", { text });
  for (const { key, op, value } of conditions) {
    if (op === "eq" || op === "noteq") add(op, { key, value });
    else add("comparison", { operator: op, key, value });
  }
  const plan = params.get("plan");
  if (plan) add("eq", { key: "plan_name", value: plan });
  const scanIds = params.get("scan_id");
  if (scanIds) {
    const ids = scanIds.split(/[\s,]+/).filter(Boolean).map((s) => {
      if (!/^-?\d+$/.test(s)) throw new Error(`scan id "${s}" is not a whole number; give one or several separated by commas`);
      return Number(s);
    });
    add("scan_id", { scan_ids: ids });
  }
  const since = params.get("since");
  const until = params.get("until");
  if (since || until) {
    const condition = { timezone };
    if (since) condition.since = since;
    if (until) condition.until = nextDay(until);
    add("time_range", condition);
  }
  const status = params.get("status");
  if (status === "running") add("notin", { key: "stop.exit_status", value: ["success", "fail", "abort"] });
  else if (status) add("eq", { key: "stop.exit_status", value: status });
  for (const [key, value] of params) {
    if (key.startsWith("filter[")) out.append(key, value);
  }
  return out;
}
