// HTTP calls of the inbox page: same-origin JSON with the session cookie and CSRF token.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

async function request(method, url, body, { form = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let payload;
  if (body !== undefined) {
    if (form) payload = body;
    else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, "network error: check your connection");
  }
  if (response.status === 401 || response.status === 403) {
    if (response.redirected || response.status === 401) location.assign("/accounts/login/?next=/inbox/");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, describe(data) || `HTTP ${response.status}`);
  return data;
}

function describe(data) {
  if (!data) return "";
  if (typeof data.detail === "string") return data.detail;
  return Object.entries(data)
    .map(([key, value]) => `${key}: ${[].concat(value).join(" ")}`)
    .join("; ");
}

export const api = {
  conversations: (params) => request("GET", `/api/v1/conversations/?${new URLSearchParams(params)}`),
  // `around`: a message id (a search hit): the page of messages around it.
  open: (id, { around } = {}) =>
    request("GET", `/inbox/c/${id}/${around ? `?${new URLSearchParams({ around })}` : ""}`),
  conversation: (id) => request("GET", `/api/v1/conversations/${id}/`),
  olderMessages: (id, before) =>
    request("GET", `/api/v1/conversations/${id}/messages/?${new URLSearchParams({ before })}`),
  newerMessages: (id, after) =>
    request("GET", `/api/v1/conversations/${id}/messages/?${new URLSearchParams({ after })}`),
  search: (params) => request("GET", `/api/v1/search/?${new URLSearchParams(params)}`),
  send: (id, body) => request("POST", `/api/v1/conversations/${id}/messages/`, body),
  conversation: (id) => request("GET", `/api/v1/conversations/${id}/`),
  templates: (id) => request("GET", `/api/v1/conversations/${id}/templates/`),
  upload: (id, formData) => request("POST", `/inbox/c/${id}/upload/`, formData, { form: true }),
  retry: (messageId) => request("POST", `/api/v1/messages/${messageId}/retry/`, {}),
  retryDownload: (attachmentId) => request("POST", `/inbox/attachments/${attachmentId}/retry/`, {}),
  update: (id, changes) => request("PATCH", `/api/v1/conversations/${id}/`, changes),
  // bulk.js: one change for ≤ 100 conversations, all or nothing
  bulk: (body) => request("POST", "/api/v1/conversations/bulk/", body),
  bulkLabels: (body) => request("POST", "/api/v1/conversations/labels/", body),
  availability: () => request("GET", "/api/v1/availability/"),
  setAvailability: (status) => request("PATCH", "/api/v1/availability/", { status }),
  markRead: (id) => request("POST", `/api/v1/conversations/${id}/read/`, {}),
  counts: () => request("GET", "/inbox/counts/"),
  // saved views (views.js): their counts come with the others
  views: () => request("GET", "/api/v1/views/"),
  createView: (body) => request("POST", "/api/v1/views/", body),
  updateView: (id, body) => request("PATCH", `/api/v1/views/${id}/`, body),
  deleteView: (id) => request("DELETE", `/api/v1/views/${id}/`),
  // team workflow: labels, activity, @mentions, canned replies
  createLabel: (body) => request("POST", "/api/v1/labels/", body),
  changeLabels: (id, body) => request("POST", `/api/v1/conversations/${id}/labels/`, body),
  mentionable: (id) => request("GET", `/api/v1/conversations/${id}/mentionable/`),
  mentions: (params = {}) => request("GET", `/api/v1/mentions/?${new URLSearchParams(params)}`),
  markMentionsRead: (body) => request("POST", "/api/v1/mentions/read/", body),
  canned: (params = {}) => request("GET", `/api/v1/canned-responses/?${new URLSearchParams(params)}`),
  createCanned: (body) => request("POST", "/api/v1/canned-responses/", body),
  updateCanned: (id, body) => request("PATCH", `/api/v1/canned-responses/${id}/`, body),
  deleteCanned: (id) => request("DELETE", `/api/v1/canned-responses/${id}/`),
  // merge and split (merge.js)
  mergeCandidates: (id) => request("GET", `/api/v1/conversations/${id}/merge-candidates/`),
  merge: (id, body) => request("POST", `/api/v1/conversations/${id}/merge/`, body),
  unmerge: (id) => request("POST", `/api/v1/conversations/${id}/unmerge/`, {}),
  split: (id, body) => request("POST", `/api/v1/conversations/${id}/split/`, body),
  duplicates: (contactId) => request("GET", `/api/v1/contacts/${contactId}/duplicates/`),
  mergeContacts: (contactId, body) => request("POST", `/api/v1/contacts/${contactId}/merge/`, body),
  unmergeContact: (contactId) => request("POST", `/api/v1/contacts/${contactId}/unmerge/`, {}),
  notificationSettings: () => request("GET", "/api/v1/notifications/settings/"),
  saveNotificationSettings: (changes) => request("PATCH", "/api/v1/notifications/settings/", changes),
  pushSubscribe: (subscription) => request("POST", "/api/v1/notifications/push-subscriptions/", subscription),
  pushUnsubscribe: (endpoint) => request("POST", "/api/v1/notifications/push-subscriptions/unsubscribe/", { endpoint }),
};
