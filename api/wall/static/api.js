// The gateway's HTTP API as the wall uses it: login token, JSON calls, WHEP signalling.

const TOKEN_KEY = "xl.wall.token";

export const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  user: "",
  role: "",
  onExpired: () => {},
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

// The gateway's own messages are Chinese first, English second; the page's fallbacks follow suit.
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `请求失败（HTTP ${status}） / request failed (HTTP ${status})`);
    this.status = status;
  }
}

const UNREACHABLE = "无法连接网关：请检查网络后重试 / cannot reach the gateway: check the network and retry";

// fetch() that fails with an ApiError (status 0, retried like a 5xx) when the gateway cannot be reached.
async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error instanceof TypeError) throw new ApiError(0, UNREACHABLE);
    throw error;
  }
}

// A 422's list of problems ({loc, msg}) as one line.
function problems(list) {
  const each = list.map((p) => `${(p.loc || []).filter((part) => part !== "body").join(".")}: ${p.msg}`);
  return `请求内容无效 / invalid request: ${each.join("; ")}`;
}

export async function call(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (auth.token) init.headers.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) {
    if (typeof body === "string") init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const response = await send(path, init);
  if (response.status === 401 && path !== "/api/auth/login") auth.onExpired();
  if (raw) return response;
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// The ApiError of a refused call, with the gateway's "detail" as its message.
async function failure(response) {
  let detail = "";
  try {
    const data = await response.json();
    if (typeof data.detail === "string") detail = data.detail;
    else if (Array.isArray(data.detail)) detail = problems(data.detail);
    else detail = JSON.stringify(data.detail);
  } catch {
    detail = ""; // not JSON (a proxy's page): the status says it
  }
  return new ApiError(response.status, detail);
}

export async function login(username, password) {
  const data = await call("/api/auth/login", { method: "POST", body: { username, password } });
  auth.set(data.access_token);
  return whoAmI();
}

export async function whoAmI() {
  const me = await call("/api/auth/me");
  auth.user = me.name;
  auth.role = me.role;
  return me;
}

export function mayWatch() {
  return auth.role === "operator" || auth.role === "admin";
}

// WHEP: POST the complete offer (all candidates), get the answer and the session's Location.
export async function whepStart(cameraId, offerSdp) {
  const response = await call(`/api/wall/whep/${encodeURIComponent(cameraId)}`, {
    method: "POST",
    body: offerSdp,
    headers: { "Content-Type": "application/sdp" },
    raw: true,
  });
  if (response.status !== 201) throw await failure(response);
  return { location: response.headers.get("Location"), answer: await response.text() };
}

export function whepStop(location) {
  if (!location) return;
  fetch(location, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${auth.token}` },
    keepalive: true,
  }).catch(() => {});
}
