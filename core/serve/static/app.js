// The page at / of vidtt serve: choose a video, see the frames the model will see and the
// visual-token plan, ask and follow up (answers stream in), copy the request as code.
// Plain JS, no dependencies. It talks to GET /v1/ui/config, POST /v1/uploads (a file is sent
// once, then named as upload:ID), POST /v1/frames and POST /v1/chat/completions, with the API
// key (when one is given) as a Bearer token; with a library, GET /v1/library, POST
// /v1/library/search and /v1/library/ask, its thumbnails and videos.

const KEY_STORE = "vidtt-api-key"; // sessionStorage: the key lives as long as the tab
const SESSION_STORE = "vidtt-session"; // sessionStorage: the video and conversation, for a reload
const KEPT_FIELDS = [
  "sampler", "frames", "fps", "every", "start", "end", "max-visual-tokens", "transcript",
  "max-tokens", "temperature",
];
const THUMB_SIZE = 160;
const DEBOUNCE_MS = 350;
const PLACEHOLDER = "YOUR_VIDEO_URL_OR_PATH";
const OPENAI_ARGS = new Set([
  "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
  "stop", "n", "stream", "stream_options",
]);

const $ = (id) => document.getElementById(id);

const state = {
  config: null, // GET /v1/ui/config
  key: sessionStorage.getItem(KEY_STORE) || "",
  video: null, // {url, label, upload, file}: upload is the upload's id, true for a data: URL
  history: [], // the conversation so far, as OpenAI messages
  last: null, // the last chat request body the page sent
  answering: null, // the AbortController of the answer streaming in
  framesAbort: null, // the AbortController of the strip's request
  framesTimer: 0,
  uploading: null, // the XMLHttpRequest of the upload on its way
  restored: false, // whether the tab's session was looked for (once, with the first config)
  duration: null, // the video's seconds, as /v1/frames gave them (the time bar's length)
  spans: null, // the time spans on the time bar: {item, list, chosen} (chosen: an index or null)
};

/** The time spans each answer carried (its <li> -> {spans, asked}): spans is null where the
 * server sent none; asked, whether the question asked for them. */
const answerSpans = new WeakMap();

class ServerError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// -- small helpers ------------------------------------------------------------------------------

/** An element with attributes and children (strings become text, never HTML). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** A size in bytes as people read it: "512 bytes", "1.5 KB", "64 MB". */
function bytes(n) {
  const short = (x) => String(Number(x.toFixed(1)));
  if (n < 1024) return `${n} bytes`;
  if (n < 1 << 20) return `${short(n / 1024)} KB`;
  return `${short(n / (1 << 20))} MB`;
}

/** Seconds as [h:]mm:ss.s (or .ss with digits = 2). */
function clock(seconds, digits = 1) {
  const scale = 10 ** digits;
  const units = Math.round(seconds * scale);
  const minutes = Math.floor(units / (60 * scale));
  const rest = ((units % (60 * scale)) / scale).toFixed(digits).padStart(3 + digits, "0");
  const hours = Math.floor(minutes / 60);
  const mm = String(minutes % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${rest}` : `${mm}:${rest}`;
}

/** Seconds rounded as the captions round them: "3.2". */
function seconds(value, digits = 1) {
  const scale = 10 ** digits;
  return (Math.round(value * scale) / scale).toFixed(digits);
}

/** 1 decimal, or 2 where 1 would give two frames the same caption. */
function digitsFor(times) {
  const shown = times.map((t) => clock(t, 1));
  return new Set(shown).size === shown.length ? 1 : 2;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function numberOf(id) {
  const input = $(id);
  if (input.closest("[hidden]") || input.value.trim() === "") return null;
  const value = input.valueAsNumber;
  return Number.isFinite(value) ? value : null;
}

// -- errors -------------------------------------------------------------------------------------

/** The error shown last, `{ message, about, times }`: kept while a new try of the same thing
 * runs (a try clears the alert), forgotten when it is dismissed or the thing goes well. */
let lastError = null;

/** Show `error` at the top of the page; `about` says what it is about ("video": the video and
 * its strip, "answer": a question), so that the strip's next success clears only its own. The
 * same error again is counted ("(2 times)") and flashes: it is visibly new, and a screen reader
 * hears it again. */
function showError(error, about = "video") {
  if (error?.name === "AbortError") return;
  let message = error instanceof ServerError ? error.message : null;
  if (message === null) {
    console.error(error);
    message = `Something went wrong on the page: ${error?.message ?? error}`;
  }
  const times = lastError?.message === message ? lastError.times + 1 : 1;
  lastError = { message, about, times };
  const close = el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", () => {
    lastError = null;
    clearError();
  });
  const alert = $("alert");
  alert.replaceChildren(el("p", {}, times > 1 ? `${message} (${times} times)` : message), close);
  alert.dataset.about = about;
  alert.classList.remove("flash");
  void alert.offsetWidth; // restart the flash
  alert.classList.add("flash");
}

/** Clear the error shown (only one about `about`, when given: that went well, so an error
 * about it later is a new one). */
function clearError(about = null) {
  const alert = $("alert");
  if (about !== null && lastError?.about === about) lastError = null;
  if (about !== null && alert.dataset.about !== about) return;
  alert.replaceChildren();
  alert.classList.remove("flash");
  delete alert.dataset.about;
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The error of a failed answer: the server's one-line message. */
async function errorOf(response) {
  let message = `the server answered ${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const data = await response.json();
    if (data?.error?.message) ({ message, code } = data.error);
  } catch {
    // not JSON: the status line says it
  }
  if (response.status === 401) {
    $("key-form").hidden = false;
    message = state.key
      ? `The server refused the API key: ${message}. Enter the right key above.`
      : `This server needs an API key: enter it above (${message}).`;
  }
  return new ServerError(message, response.status, code);
}

// -- the API ------------------------------------------------------------------------------------

/** The request body as JSON, refused here when it is over the server's body limit. */
function encode(body) {
  const json = JSON.stringify(body);
  const limit = state.config?.max_body_bytes;
  const size = limit ? new Blob([json]).size : 0;
  if (limit && size > limit) {
    throw new ServerError(
      `This request would be ${bytes(size)}, over this server's limit of ${limitText()}: ` +
        `${largeVideoHint()}. Nothing was sent.`,
    );
  }
  return json;
}

/** The largest file the page can send: an upload, or else a data: URL inside the body limit. */
function fileLimit() {
  const { max_upload_bytes: upload, max_body_bytes: body } = state.config;
  return upload ?? Math.max(0, Math.floor(((body - 2048) * 3) / 4));
}

function fileLimitText() {
  const limit = fileLimit();
  return state.config.max_upload_bytes ? `${bytes(limit)} (${limit} bytes)` : `about ${bytes(limit)}`;
}

function limitText() {
  const limit = state.config.max_body_bytes;
  return `${bytes(limit)} (${limit} bytes)`;
}

function largeVideoHint() {
  const local = state.config?.local_media ? ", or as a file on the server" : "";
  return `send large videos by URL${local}`;
}

function keyHeaders() {
  return state.key ? { Authorization: `Bearer ${state.key}` } : {};
}

/** fetch() with the key, POSTing `json` (a JSON text) when given; a failed answer is thrown
 * as a ServerError with the server's words. */
async function api(path, json, signal) {
  const headers = keyHeaders();
  const init = { headers, signal };
  if (json !== undefined) {
    Object.assign(init, { method: "POST", body: json });
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ServerError("Could not reach the server: is vidtt serve still running?");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** The `data:` payloads of a server-sent event stream, one per event. */
async function* sseData(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n"); // (vidtt sends \n; other servers may not)
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield data;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// -- the server's settings ----------------------------------------------------------------------

async function loadConfig() {
  try {
    const response = await api("/v1/ui/config");
    state.config = await response.json();
  } catch (error) {
    showError(error);
    return false;
  }
  applyConfig(state.config);
  showLibrary();
  if (!state.restored) {
    state.restored = true;
    restoreSession();
  }
  return true;
}

// -- a reload keeps the tab's session -------------------------------------------------------------

/** Keep the video (its upload or URL; a file itself cannot be kept), the conversation as shown
 * and sent, and the fields, for a reload of this tab. An answer still coming is left out. */
function saveSession() {
  const video = state.video && { url: state.video.url, label: state.video.label, upload: state.video.upload };
  let turns = [...$("log").children].map((item) => ({
    role: item.classList.contains("user") ? "user" : "assistant",
    text: item.querySelector(".text").textContent,
    meta: item.querySelector(".meta").textContent,
    spans: answerSpans.get(item),
  }));
  if (state.answering) turns = turns.slice(0, -2);
  const fields = Object.fromEntries(KEPT_FIELDS.map((id) => [id, $(id).value]));
  const session = { video, turns, history: state.history, last: state.last, fields };
  session.spans = $("spans").checked;
  try {
    sessionStorage.setItem(SESSION_STORE, JSON.stringify(session));
  } catch {
    sessionStorage.removeItem(SESSION_STORE); // over the tab's storage (a video as a data: URL)
  }
}

/** The tab's session as it was before a reload, if there is one. */
function restoreSession() {
  let session = null;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_STORE) ?? "null");
  } catch {
    // not ours, or damaged: start afresh
  }
  if (!session) return;
  for (const [id, value] of Object.entries(session.fields ?? {})) {
    if (KEPT_FIELDS.includes(id)) $(id).value = value;
  }
  showSamplerFields();
  for (const turn of session.turns ?? []) {
    const shown = addTurn(turn.role === "user" ? "user" : "assistant", String(turn.text ?? ""));
    shown.meta.textContent = String(turn.meta ?? "");
    if (turn.role !== "user") shown.item.dataset.done = "true";
    if (turn.role !== "user" && turn.spans) {
      showAnswerSpans(shown.item, spansOf(turn.spans.spans), turn.spans.asked === true);
    }
  }
  $("spans").checked = session.spans === true;
  state.history = Array.isArray(session.history) ? session.history : [];
  state.last = session.last ?? null;
  const answers = $("log").querySelectorAll(".turn.assistant");
  if (answers.length) useAnswerSpans(answers[answers.length - 1]);
  showCode();
  if (session.video?.url) {
    state.video = session.video;
    showCurrent();
    refreshFrames();
  }
}

function applyConfig(config) {
  $("model").textContent = config.model;
  document.title = `vidtt · ${config.model}`;
  $("key-form").hidden = !(config.api_key_required || state.key);
  $("path-form").hidden = !config.local_media;
  $("file-limit").textContent = `up to ${fileLimitText()}; ${largeVideoHint()}`;
  const defaults = config.defaults ?? {};
  const samplers = config.samplers ?? [];
  $("sampler").replaceChildren(
    ...samplers.map((name) =>
      el("option", { value: name }, name),
    ),
  );
  if (defaults.sampler) $("sampler").value = defaults.sampler;
  $("transcript-field").hidden = !config.transcript_available;
  if (defaults.transcript) $("transcript").title = `the server's default: ${defaults.transcript}`;
  if (defaults.max_visual_tokens) $("max-visual-tokens").placeholder = defaults.max_visual_tokens;
  $("max-tokens").placeholder = defaults.max_new_tokens ?? "";
  const generation = defaults.generation ?? {};
  $("temperature").placeholder = generation.do_sample ? (generation.temperature ?? "") : "0 (greedy)";
  showSamplerFields();
}

function samplerFields(name) {
  return state.config?.sampler_fields?.[name] ?? null;
}

/** The option the frames field sets for a sampler (num_frames, max_frames), or null. */
function framesOption(name) {
  const fields = samplerFields(name);
  if (!fields) return name === "uniform" ? "num_frames" : "max_frames";
  return ["num_frames", "max_frames"].find((option) => fields.includes(option)) ?? null;
}

function takes(name, option) {
  const fields = samplerFields(name);
  return fields ? fields.includes(option) : !["fps", "every"].includes(option) || name === "interval";
}

/** Show the fields the chosen sampler takes, with the server's defaults as placeholders. */
function showSamplerFields() {
  const name = $("sampler").value;
  const defaults = state.config?.defaults ?? {};
  const given = name === defaults.sampler ? (defaults.sampler_options ?? {}) : {};
  for (const field of document.querySelectorAll("#sampling [data-option]")) {
    const option = field.dataset.option;
    field.hidden = !takes(name, option);
    field.querySelector("input").placeholder = given[option] ?? "";
  }
  const option = framesOption(name);
  const frames = $("frames");
  frames.disabled = option === null;
  frames.placeholder = option ? (given[option] ?? "") : "";
  $("frames-hint").textContent =
    option === "num_frames" ? "how many" : option ? "at most" : "this sampler sets its own";
}

// -- the request's fields -----------------------------------------------------------------------

/** The sampling fields the page's controls set (the ones left empty are the server's). */
function samplingFields() {
  const out = {};
  const sampler = $("sampler").value;
  if (sampler && sampler !== state.config?.defaults?.sampler) out.sampler = sampler;
  const option = framesOption(sampler);
  const frames = numberOf("frames");
  if (option && frames !== null) out[option] = frames;
  for (const name of ["fps", "every", "start", "end"]) {
    const value = numberOf(name);
    if (value !== null) out[name] = value;
  }
  const budget = numberOf("max-visual-tokens");
  if (budget !== null) out.max_visual_tokens = budget;
  const transcript = $("transcript").value;
  if (transcript && !$("transcript-field").hidden) out.transcript = transcript;
  return out;
}

function answerFields() {
  const out = {};
  const maxTokens = numberOf("max-tokens");
  if (maxTokens !== null) out.max_tokens = maxTokens;
  const temperature = numberOf("temperature");
  if (temperature !== null) out.temperature = temperature;
  return out;
}

// -- the video ----------------------------------------------------------------------------------

function setVideo(video) {
  if (state.video?.upload !== video.upload) forgetUpload(state.video);
  state.video = video;
  const restarted = state.history.length > 0 || $("log").children.length > 0;
  if (restarted) newConversation(false);
  showCurrent(restarted ? "; the conversation starts over" : "");
  refreshFrames();
}

/** Say which video is chosen (`note` added to its label), or that none is. */
function showCurrent(note = "") {
  $("current").textContent = state.video ? `Video: ${state.video.label}${note}.` : "No video chosen yet.";
}

function chooseFile() {
  const file = $("file").files?.[0];
  if (file) useFile(file);
}

/** A file chosen or dropped: refused here when over the limit, else uploaded (or read as a
 * data: URL where the server takes no uploads). */
async function useFile(file) {
  const input = $("file");
  if (!state.config) {
    input.value = "";
    showError(new ServerError("The page has not reached the server yet: give the API key first."));
    return;
  }
  if (file.size > fileLimit()) {
    input.value = "";
    showError(
      new ServerError(
        `${file.name} is ${bytes(file.size)}, over the ${fileLimitText()} this server takes ` +
          `from the page. ${sentence(largeVideoHint())}. Nothing was sent.`,
      ),
    );
    return;
  }
  clearError();
  const label = `${file.name} (${bytes(file.size)})`;
  if (state.config.max_upload_bytes === null) {
    readAsDataUrl(file, label);
    return;
  }
  $("current").textContent = `Uploading ${label}…`;
  try {
    const card = await uploadFile(file);
    setVideo({ url: card.url, label, upload: card.id, file });
  } catch (error) {
    if (error?.name === "AbortError") return; // another file took its place
    input.value = "";
    showCurrent();
    showError(error);
  }
}

/** POST /v1/uploads with the file as the body, its progress shown; the upload's card. An
 * upload still on its way is given up for this one. */
function uploadFile(file) {
  state.uploading?.abort();
  const bar = $("upload-progress");
  const xhr = new XMLHttpRequest();
  state.uploading = xhr;
  xhr.open("POST", "/v1/uploads");
  for (const [name, value] of Object.entries(keyHeaders())) xhr.setRequestHeader(name, value);
  xhr.setRequestHeader("Content-Type", file.type.startsWith("video/") ? file.type : "application/octet-stream");
  bar.value = 0;
  bar.hidden = false;
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  });
  return new Promise((resolve, reject) => {
    const done = () => {
      if (state.uploading === xhr) {
        state.uploading = null;
        bar.hidden = true;
      }
    };
    xhr.addEventListener("load", async () => {
      done();
      const response = new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText });
      if (response.ok) resolve(await response.json());
      else reject(await errorOf(response));
    });
    xhr.addEventListener("error", () => {
      done();
      reject(new ServerError("Could not reach the server: is vidtt serve still running?"));
    });
    xhr.addEventListener("abort", () => {
      done();
      reject(new DOMException("The upload was given up", "AbortError"));
    });
    xhr.send(file);
  });
}

/** After the server said it no longer has the page's upload (kept an hour after its last use,
 * and not across restarts): send the file again, and name the new upload in the
 * conversation. Whether it did; an error of the new upload is thrown. */
async function uploadAgain(error) {
  const video = state.video;
  if (error?.code !== "upload_not_found" || !video?.file) return false;
  $("current").textContent = `Uploading ${video.label} again (the server no longer had it)…`;
  const card = await uploadFile(video.file);
  const old = video.url;
  Object.assign(video, { url: card.url, upload: card.id });
  showCurrent();
  state.history = JSON.parse(JSON.stringify(state.history).replaceAll(old, card.url));
  return true;
}

/** `api` for a request that may name the page's upload: where the server no longer has it,
 * the file is sent again and the request once more (`sent.json` then names the new one). */
async function apiNaming(path, sent, signal) {
  const old = state.video?.url;
  try {
    return await api(path, sent.json, signal);
  } catch (error) {
    if (signal?.aborted || !(await uploadAgain(error))) throw error;
    sent.json = sent.json.replaceAll(old, state.video.url);
    return api(path, sent.json, signal);
  }
}

/** Files dropped on the video panel are used as if chosen; elsewhere they are ignored (not
 * opened by the browser in place of the page). */
function acceptDrops() {
  const panel = document.querySelector(".media");
  const hasFiles = (event) => event.dataTransfer?.types?.includes("Files");
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("drop", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  panel.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    panel.classList.add("dropping");
  });
  panel.addEventListener("dragleave", (event) => {
    if (!panel.contains(event.relatedTarget)) panel.classList.remove("dropping");
  });
  panel.addEventListener("drop", (event) => {
    panel.classList.remove("dropping");
    const file = event.dataTransfer?.files?.[0];
    if (!file) return;
    event.preventDefault();
    $("file").value = "";
    useFile(file);
  });
}

/** A server that takes no uploads: the file goes in each request as a data: URL. */
function readAsDataUrl(file, label) {
  const reader = new FileReader();
  reader.addEventListener("load", () => setVideo({ url: reader.result, label, upload: true }));
  reader.addEventListener("error", () => showError(new ServerError(`Could not read ${file.name}.`)));
  reader.readAsDataURL(file);
}

/** Drop the server's copy of an upload the page no longer uses (best effort). */
function forgetUpload(video) {
  if (typeof video?.upload !== "string") return;
  fetch(`/v1/uploads/${encodeURIComponent(video.upload)}`, {
    method: "DELETE",
    headers: keyHeaders(),
    keepalive: true,
  }).catch(() => {});
}

function chooseUrl(event) {
  event.preventDefault();
  const url = $("url").value.trim();
  if (!/^https?:\/\/\S+$/i.test(url)) {
    showError(new ServerError("Give the video's http:// or https:// URL."));
    $("url").focus();
    return;
  }
  clearError();
  setVideo({ url, label: url, upload: false });
}

function choosePath(event) {
  event.preventDefault();
  const path = $("path").value.trim();
  if (!path) {
    showError(new ServerError("Give the path of a video in the server's media folder."));
    $("path").focus();
    return;
  }
  clearError();
  setVideo({ url: path, label: `${path} (on the server)`, upload: false });
}

// -- the strip ----------------------------------------------------------------------------------

function scheduleFrames() {
  clearTimeout(state.framesTimer);
  state.framesTimer = setTimeout(refreshFrames, DEBOUNCE_MS);
}

async function refreshFrames() {
  clearTimeout(state.framesTimer);
  if (!state.video || !state.config) return;
  state.framesAbort?.abort();
  const abort = new AbortController();
  state.framesAbort = abort;
  const body = { video: state.video.url, ...samplingFields(), thumb_size: THUMB_SIZE };
  const question = $("question").value.trim();
  if (question) body.question = question;
  const maxTokens = numberOf("max-tokens");
  if (maxTokens !== null) body.max_tokens = maxTokens;
  setStripBusy(true, "Sampling frames…");
  try {
    const response = await apiNaming("/v1/frames", { json: encode(body) }, abort.signal);
    const data = await response.json();
    if (abort.signal.aborted) return;
    clearError("video");
    renderFrames(data);
  } catch (error) {
    if (abort.signal.aborted) return;
    clearStrip("The frames could not be sampled (see the message above).");
    showError(error);
  } finally {
    if (state.framesAbort === abort) {
      state.framesAbort = null;
      $("strip").setAttribute("aria-busy", "false");
    }
  }
}

function setStripBusy(busy, text) {
  $("strip").setAttribute("aria-busy", String(busy));
  $("strip-status").textContent = text;
}

function clearStrip(text) {
  for (const id of ["strip", "warnings", "shots", "transcript-lines"]) $(id).replaceChildren();
  $("plan-box").hidden = $("shots").hidden = $("transcript-box").hidden = true;
  $("strip").dataset.count = "0";
  setStripBusy(false, text);
}

function renderFrames(data) {
  const frames = data.frames ?? [];
  const digits = digitsFor(frames.map((f) => f.time));
  const shotOf = shotsByFrame(data.shots ?? []);
  $("strip").replaceChildren(...frames.map((f, i) => frameItem(f, digits, shotOf[i])));
  $("strip").dataset.count = String(frames.length);
  const video = data.video ?? {};
  const about = [
    video.duration != null ? `${seconds(video.duration)} s` : null,
    video.width ? `${video.width}x${video.height}` : null,
    video.codec,
  ].filter(Boolean);
  // (under a budget, the plan's sentence below says why these frames)
  const rule = data.frames_rule && !data.plan?.budget ? `: ${data.frames_rule}` : "";
  $("strip-status").textContent =
    `${plural(frames.length, "frame")} of ${about.join(", ") || "the video"}, ` +
    `sampled by ${data.sampler}${rule}.`;
  renderTimeline(frames, data.shots ?? [], video.duration);
  if (!video.duration) showSpans(false); // (no time bar: the frames of a span are still shown)
  renderPlan(data.plan);
  renderTranscript(data.transcript ?? []);
  $("warnings").replaceChildren(...(data.warnings ?? []).map((w) => el("li", {}, w)));
}

/** For each frame (by position), the shot it is in: {number, of}. */
function shotsByFrame(shots) {
  const out = {};
  shots.forEach((shot, i) => {
    for (const frame of shot.frames ?? []) out[frame] = { number: i + 1, of: shots.length };
  });
  return out;
}

function frameItem(frame, digits, shot) {
  const at = seconds(frame.time, digits);
  const image = el("img", {
    src: frame.image,
    alt: `frame at ${at} s`,
    width: frame.width,
    height: frame.height,
    decoding: "async",
  });
  const time = el("time", { datetime: `PT${frame.time}S` }, clock(frame.time, digits));
  const caption = el("figcaption", {}, time);
  if (shot) caption.append(" ", el("span", { class: "shot" }, `shot ${shot.number}`));
  const figure = el(
    "figure",
    { "data-time": frame.time, "data-index": frame.index, title: `frame ${frame.index}` },
    image,
    caption,
  );
  if (shot) figure.classList.add(shot.number % 2 ? "shot-odd" : "shot-even");
  return el("li", {}, figure);
}

/** A bar the length of the video: the shots as bands, each frame as a tick. */
function renderTimeline(frames, shots, duration) {
  const box = $("shots");
  state.duration = duration || null;
  if (!duration) {
    box.hidden = true;
    return;
  }
  const at = (t) => `${Math.min(100, Math.max(0, (t / duration) * 100))}%`;
  const bands = shots.map((shot, i) => {
    const band = el("span", { class: `band ${i % 2 ? "even" : "odd"}`, "aria-hidden": "true" });
    band.style.left = at(shot.start);
    band.style.width = `calc(${at(shot.end)} - ${at(shot.start)})`;
    return band;
  });
  const ticks = frames.map((frame) => {
    const tick = el("span", { class: "tick", "aria-hidden": "true" });
    tick.style.left = at(frame.time);
    return tick;
  });
  const label = shots.length ? `${plural(shots.length, "shot")}; ` : "";
  box.replaceChildren(
    el("div", { id: "track", class: "track", role: "group", "aria-label": "Time bar" }, ...bands, ...ticks),
    el("p", { class: "hint" }, `${label}${clock(0)} to ${clock(duration)}`),
    el("p", { id: "span-note", class: "span-note", role: "status" }),
  );
  box.hidden = false;
  showSpans(false);
}

// -- the time spans an answer names --------------------------------------------------------------

/** vidtt.spans as the page takes it: [{start, end, text}] (start <= end), or null where the
 * server sent no list. */
function spansOf(value) {
  if (!Array.isArray(value)) return null;
  return value
    .filter((span) => Number.isFinite(span?.start) && Number.isFinite(span?.end))
    .map((span) => ({
      start: Math.min(span.start, span.end),
      end: Math.max(span.start, span.end),
      text: String(span.text ?? ""),
    }));
}

const spanTimes = (span) => `${clock(span.start)} – ${clock(span.end)}`;
const spanLabel = (span) => (span.text ? `${spanTimes(span)}: ${span.text}` : spanTimes(span));
const inSpan = (time, span) => time >= span.start - 1e-6 && time <= span.end + 1e-6;

/** Under an answer, its spans as buttons that show their frames (and "All frames"); where they
 * were asked for and there are none, a line that says so. */
function showAnswerSpans(item, spans, asked) {
  answerSpans.set(item, { spans, asked });
  let block = null;
  if (spans?.length) {
    const buttons = spans.map((span, i) => {
      const button = el(
        "button",
        { type: "button", class: "span", "aria-pressed": "false", "data-index": i },
        el("time", { datetime: `PT${span.start}S` }, spanTimes(span)),
        " ",
        el("span", { class: "span-text" }, span.text),
      );
      button.addEventListener("click", () => chooseSpan(item, i));
      return el("li", {}, button);
    });
    const all = el("button", { type: "button", class: "all-frames", hidden: true }, "All frames");
    all.addEventListener("click", () => chooseSpan(item, null));
    const title = `When: ${plural(spans.length, "time span")}; choose one to see its frames`;
    block = el("div", { class: "spans" }, el("p", { class: "hint" }, title), el("ol", {}, ...buttons), all);
  } else if (asked) {
    const said = spans ? "The answer named no time." : "The server sent no time spans.";
    block = el("p", { class: "spans none" }, said);
  }
  item.querySelector(".spans")?.remove();
  if (block) item.querySelector(".meta").before(block);
}

/** Put an answer's spans on the time bar (none chosen); an answer without any clears it. */
function useAnswerSpans(item) {
  const list = answerSpans.get(item)?.spans;
  state.spans = list?.length ? { item, list, chosen: null } : null;
  showSpans(false);
}

/** Choose span `index` of an answer (null, or the one chosen already: none, all frames). */
function chooseSpan(item, index) {
  const same = state.spans?.item === item && state.spans.chosen === index;
  state.spans = { item, list: answerSpans.get(item).spans, chosen: same ? null : index };
  showSpans(true);
}

/** Show the chosen spans: the buttons pressed, the bands on the time bar, the frames in the
 * chosen span (scrolled into view when `scroll`), the others dimmed. */
function showSpans(scroll) {
  const { item, list, chosen } = state.spans ?? { item: null, list: [], chosen: null };
  for (const button of $("log").querySelectorAll(".spans button.span")) {
    const pressed = button.closest(".turn") === item && Number(button.dataset.index) === chosen;
    button.setAttribute("aria-pressed", String(pressed));
  }
  for (const all of $("log").querySelectorAll(".spans .all-frames")) {
    all.hidden = all.closest(".turn") !== item || chosen === null;
  }
  drawSpanBands(list, chosen);
  markFrames(chosen === null ? null : list[chosen], scroll);
}

function drawSpanBands(list, chosen) {
  const track = $("track");
  if (!track) return;
  for (const band of track.querySelectorAll(".span-band")) band.remove();
  const duration = state.duration;
  if (!duration) return;
  const at = (t) => Math.min(100, Math.max(0, (t / duration) * 100));
  list.forEach((span, i) => {
    const label = spanLabel(span);
    const band = el("span", { class: "span-band", role: "img", "aria-label": label, title: label });
    band.classList.toggle("chosen", i === chosen);
    band.style.left = `${at(span.start)}%`;
    band.style.width = `${at(span.end) - at(span.start)}%`;
    band.addEventListener("click", () => chooseSpan(state.spans.item, i));
    track.append(band);
  });
}

/** Highlight the strip's frames in `span` (null: none chosen, all shown alike), and say so. */
function markFrames(span, scroll) {
  const figures = [...$("strip").querySelectorAll("figure")];
  const inside = span ? figures.filter((f) => inSpan(Number(f.dataset.time), span)) : [];
  for (const figure of figures) {
    figure.classList.toggle("in-span", span !== null && inside.includes(figure));
    figure.classList.toggle("out-span", span !== null && !inside.includes(figure));
  }
  const note = $("span-note");
  if (note) note.textContent = span ? spanNote(span, inside.length, figures.length) : "";
  if (scroll && inside.length) inside[0].scrollIntoView({ block: "nearest", inline: "nearest" });
}

function spanNote(span, inside, all) {
  const which = inside ? `${inside} of ${plural(all, "frame")}` : "no frame of the strip";
  return `${spanTimes(span)}: ${which} in it. Choose it again, or All frames, to see all.`;
}

/** "8 frames x 64 tokens = 512 visual tokens; budget 1024; context 2048", and a bar. */
function renderPlan(plan) {
  const box = $("plan-box");
  if (!plan) {
    box.hidden = true;
    return;
  }
  const budget = plan.budget ? (plan.budget.limit ?? plan.budget.max_visual_tokens) : null;
  const line = [
    `${plural(plan.frames, "frame")} × ${plan.tokens_per_frame} tokens = ` +
      `${plan.visual_tokens} visual tokens`,
    `budget ${budget ?? "none"}`,
    `context ${plan.context ?? "unknown"}`,
  ].join("; ");
  $("plan").textContent = plan.fits ? line : `${line}: does not fit`;
  $("plan-reason").textContent = plan.reason ?? "";
  box.classList.toggle("over", !plan.fits);
  const scale = Math.max(plan.context ?? 0, plan.total ?? 0, budget ?? 0, 1);
  const part = (name, tokens) => {
    $("plan-bar").querySelector(`.${name}`).style.width = `${((tokens ?? 0) / scale) * 100}%`;
  };
  part("visual", plan.video_tokens ?? plan.visual_tokens);
  part("text", plan.text_tokens);
  part("reply", plan.max_new_tokens);
  const mark = $("plan-bar").querySelector(".budget");
  mark.hidden = budget === null;
  if (budget !== null) mark.style.left = `${Math.min(100, (budget / scale) * 100)}%`;
  box.hidden = false;
}

function renderTranscript(lines) {
  $("transcript-lines").replaceChildren(
    ...lines.map((line) =>
      el(
        "li",
        {},
        el("time", { datetime: `PT${line.start}S` }, `${clock(line.start)}–${clock(line.end)}`),
        " ",
        line.text,
      ),
    ),
  );
  $("transcript-box").hidden = lines.length === 0;
}

// -- the conversation ---------------------------------------------------------------------------

function addTurn(role, text) {
  const item = el("li", { class: `turn ${role}` });
  const body = el("div", { class: "text" }, text);
  const meta = el("p", { class: "meta" });
  item.append(el("p", { class: "who" }, role === "user" ? "You" : "Answer"), body, meta);
  if (role === "assistant") item.append(copyButton(body));
  $("log").append(item);
  return { item, body, meta };
}

/** Scroll the conversation to its end (the answer coming in, then its meta line and Copy). */
function scrollLog() {
  $("log").scrollTop = $("log").scrollHeight;
}

/** "Copy" for an answer (shown once it is done): its text to the clipboard. */
function copyButton(body) {
  const button = el("button", { type: "button", class: "copy-answer", "aria-label": "Copy the answer" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(body.textContent);
      button.textContent = "Copied";
    } catch {
      window.getSelection()?.selectAllChildren(body);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 2000);
  });
  return button;
}

/** The chat request for a question: the earlier turns, then the question (with the video when
 * it is the conversation's first). */
function chatBody(question) {
  const content = [];
  if (!state.history.length && state.video) {
    content.push({ type: "video_url", video_url: { url: state.video.url } });
  }
  content.push({ type: "text", text: question });
  return {
    model: state.config?.model,
    messages: [...state.history, { role: "user", content }],
    stream: true,
    stream_options: { include_usage: true },
    ...samplingFields(),
    ...answerFields(),
    ...($("spans").checked ? { spans: true } : {}),
  };
}

async function ask(event) {
  event?.preventDefault();
  const box = $("question");
  const question = box.value.trim();
  if (state.answering) return;
  if (!question) {
    box.focus();
    return;
  }
  const body = chatBody(question);
  const sent = {};
  try {
    sent.json = encode(body);
  } catch (error) {
    showError(error, "answer");
    return;
  }
  clearError();
  const asked = addTurn("user", question);
  if (body.messages.length === 1 && state.video) {
    asked.meta.textContent = `about ${state.video.label}`;
  }
  const reply = addTurn("assistant", "");
  const abort = new AbortController();
  setAnswering(abort);
  box.value = "";
  state.last = body;
  showCode();
  const started = performance.now();
  const got = { text: "", finish: null, usage: null, spans: undefined };
  try {
    const first = sent.json;
    const response = await apiNaming("/v1/chat/completions", sent, abort.signal);
    if (sent.json !== first) Object.assign(body, JSON.parse(sent.json)); // the upload sent again
    await readAnswer(response, reply, got);
    state.history = [...body.messages, { role: "assistant", content: got.text }];
    reply.meta.textContent = answerMeta(got.usage, got.finish, performance.now() - started);
    showAnswerSpans(reply.item, spansOf(got.spans), body.spans === true);
    useAnswerSpans(reply.item);
    reply.item.dataset.done = "true";
    scrollLog(); // the meta line and Copy appear under the text: keep them in view
    clearError("answer");
  } catch (error) {
    if (error.name === "AbortError" && got.text) {
      state.history = [...body.messages, { role: "assistant", content: got.text }];
      reply.meta.textContent = "stopped";
      reply.item.dataset.done = "true";
      scrollLog();
    } else {
      asked.item.remove();
      reply.item.remove();
      if (!box.value) box.value = question;
      showError(error, "answer");
    }
  } finally {
    setAnswering(null);
  }
}

/** Read a streamed answer into `got` ({text, finish, usage, spans}), showing it in `reply` as it
 * comes; vidtt.spans comes in the last chunk (the one with the finish reason). */
async function readAnswer(response, reply, got) {
  for await (const data of sseData(response)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new ServerError(chunk.error.message, 0, chunk.error.code);
    const choice = chunk.choices?.[0];
    if (choice?.delta?.content) {
      got.text += choice.delta.content;
      reply.body.textContent = got.text;
      scrollLog();
    }
    got.finish = choice?.finish_reason ?? got.finish;
    got.usage = chunk.usage ?? got.usage;
    if (chunk.vidtt && "spans" in chunk.vidtt) got.spans = chunk.vidtt.spans;
    const progress = chunk.vidtt?.progress;
    if (progress) reply.meta.textContent = progressText(progress);
  }
}

function progressText(progress) {
  const { done, total } = progress;
  return done != null && total ? `preparing: ${done} of ${plural(total, "segment")}…` : "preparing…";
}

function answerMeta(usage, finish, ms) {
  const parts = [];
  if (usage) {
    parts.push(plural(usage.completion_tokens, "token"));
    if (usage.visual_tokens != null) parts.push(`${usage.visual_tokens} visual tokens seen`);
  }
  parts.push(`${(ms / 1000).toFixed(1)} s`);
  if (finish === "length") parts.push("stopped at the token limit");
  return parts.join(" · ");
}

function setAnswering(abort) {
  // Read before Stop is disabled: a disabled button drops the focus.
  const onStop = document.activeElement === $("stop");
  state.answering = abort;
  $("send").disabled = abort !== null;
  $("stop").disabled = abort === null;
  $("log").setAttribute("aria-busy", String(abort !== null));
  if (abort === null && onStop) $("question").focus();
}

function stop() {
  state.answering?.abort();
}

function stopAndAsk() {
  stop();
  $("question").focus();
}

function newConversation(focus = true) {
  stop();
  state.history = [];
  $("log").replaceChildren();
  state.spans = null;
  showSpans(false);
  if (focus) $("question").focus();
}

function onQuestionKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("ask-form").requestSubmit();
  }
}

// -- the request as code ------------------------------------------------------------------------

/** The request with videos sent as data: URLs replaced by a placeholder; `uploaded` says how
 * the page sent a file ("data", "upload") or is null. */
function shareable(body) {
  let uploaded = null;
  const messages = body.messages.map((message) => {
    if (!Array.isArray(message.content)) return message;
    const content = message.content.map((part) => {
      const url = part.video_url?.url;
      if (typeof url !== "string") return part;
      if (url.startsWith("upload:")) uploaded = "upload";
      if (!url.startsWith("data:")) return part;
      uploaded = "data";
      return { ...part, video_url: { ...part.video_url, url: PLACEHOLDER } };
    });
    return { ...message, content };
  });
  return { body: { ...body, messages }, uploaded };
}

/** The comment lines saying where the uploaded video is, and how to send another. */
function uploadNote(uploaded, comment) {
  if (uploaded === "data") {
    return [
      `${comment} The video was uploaded from the page: put your file's URL (http(s), or a path ` +
        `where the server allows local files) in place of ${PLACEHOLDER}.`,
    ];
  }
  const hours = state.config?.upload_ttl ? ` ${lifetime(state.config.upload_ttl)}` : "";
  return [
    `${comment} upload:... is the video uploaded from the page; the server keeps it${hours} ` +
      "after its last use.",
    `${comment} To send a file of your own, upload it and use the "url" it answers:`,
    `${comment}   curl ${state.key ? '-H "Authorization: Bearer $VIDTT_API_KEY" ' : ""}` +
      `-H "Content-Type: video/mp4" --data-binary @video.mp4 ${location.origin}/v1/uploads`,
  ];
}

function lifetime(seconds) {
  if (seconds >= 3600 && seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  return seconds >= 120 ? `${seconds / 60} minutes` : `${seconds} s`;
}

function curlOf(request) {
  const { body, uploaded } = shareable(request);
  const lines = [];
  if (uploaded) lines.push(...uploadNote(uploaded, "#"));
  lines.push(`curl -N ${location.origin}/v1/chat/completions \\`);
  if (state.key) lines.push('  -H "Authorization: Bearer $VIDTT_API_KEY" \\');
  lines.push('  -H "Content-Type: application/json" \\', "  -d @- <<'EOF'");
  lines.push(JSON.stringify(body, null, 2), "EOF");
  return lines.join("\n");
}

/** A JSON value as a Python literal, on one line when it fits in `width`. */
function py(value, indent = 0, width = 88) {
  const line = pyLine(value);
  if (line.length + indent * 4 <= width || value === null || typeof value !== "object") {
    return line;
  }
  const pad = "    ".repeat(indent + 1);
  const end = "    ".repeat(indent);
  const items = Array.isArray(value)
    ? value.map((v) => `${pad}${py(v, indent + 1, width)},`)
    : Object.entries(value).map(([k, v]) => `${pad}${JSON.stringify(k)}: ${py(v, indent + 1, width)},`);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  return `${open}\n${items.join("\n")}\n${end}${close}`;
}

function pyLine(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyLine).join(", ")}]`;
  const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyLine(v)}`);
  return `{${entries.join(", ")}}`;
}

function pythonOf(request) {
  const { body, uploaded } = shareable(request);
  const args = Object.entries(body).filter(([k]) => OPENAI_ARGS.has(k));
  const extra = Object.fromEntries(Object.entries(body).filter(([k]) => !OPENAI_ARGS.has(k)));
  if (Object.keys(extra).length) args.push(["extra_body", extra]);
  const key = state.key ? 'os.environ["VIDTT_API_KEY"]' : '"none"  # this server takes no key';
  const lines = [];
  if (uploaded) lines.push(...uploadNote(uploaded, "#"));
  lines.push(
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(`${location.origin}/v1`)}, api_key=${key})`,
    "stream = client.chat.completions.create(",
    ...args.map(([name, value]) => `    ${name}=${py(value, 1)},`),
    ")",
    "for chunk in stream:",
    "    if chunk.choices:",
    '        print(chunk.choices[0].delta.content or "", end="", flush=True)',
    "print()",
  );
  return lines.join("\n");
}

function showCode() {
  $("copy-curl").disabled = $("copy-python").disabled = state.last === null;
  $("copy-status").textContent = state.last ? "" : "Ask a question first.";
}

async function copy(kind) {
  if (!state.last) return;
  const text = kind === "curl" ? curlOf(state.last) : pythonOf(state.last);
  const code = $("code");
  code.value = text;
  code.hidden = false;
  const what = kind === "curl" ? "the curl command" : "the Python code";
  try {
    await navigator.clipboard.writeText(text);
    $("copy-status").textContent = `Copied ${what}.`;
  } catch {
    code.focus();
    code.select();
    $("copy-status").textContent = `The browser would not copy: ${what} is selected below, press Ctrl+C.`;
  }
}

// -- the library (vidtt serve --library) --------------------------------------------------------

const library = {
  searching: null, // the AbortController of the search on its way
  asking: null, // the AbortController of the question on its way
  moment: null, // the moment opened in the player
  thumbs: new WeakMap(), // a list of moments -> the blob: URLs of its thumbnails
};

const fileName = (path) => String(path).split(/[\\/]/).pop() || String(path);

/** The search box, where the server has a library (its name and size said above it). */
async function showLibrary() {
  const box = $("library");
  box.hidden = !state.config?.library;
  if (box.hidden) return;
  try {
    const about = await (await api("/v1/library")).json();
    $("library-about").textContent =
      `${about.name}: ${plural(about.videos, "video")}, ${plural(about.moments, "moment")}` +
      ` (embedder ${about.embedder || "none"}).`;
  } catch (error) {
    showError(error, "library");
  }
}

async function searchLibrary(event) {
  event.preventDefault();
  const query = $("library-query").value.trim();
  if (!query) {
    $("library-query").focus();
    return;
  }
  library.searching?.abort();
  const abort = new AbortController();
  library.searching = abort;
  $("library-status").textContent = "Searching…";
  $("library-results").setAttribute("aria-busy", "true");
  try {
    const response = await api("/v1/library/search", encode({ query, limit: 12 }), abort.signal);
    const { data } = await response.json();
    if (abort.signal.aborted) return;
    showMoments($("library-results"), data);
    $("library-status").textContent = data.length
      ? `${plural(data.length, "moment")} found; choose one to play it.`
      : "No moment matches.";
    clearError("library");
  } catch (error) {
    if (abort.signal.aborted) return;
    $("library-status").textContent = "";
    showError(error, "library");
  } finally {
    if (library.searching === abort) library.searching = null;
    $("library-results").setAttribute("aria-busy", "false");
  }
}

/** `moments` (search hits, or the moments an answer saw) as buttons in `list`. */
function showMoments(list, moments) {
  for (const url of library.thumbs.get(list) ?? []) URL.revokeObjectURL(url);
  const urls = [];
  library.thumbs.set(list, urls);
  list.replaceChildren(...moments.map((moment) => momentItem(moment, urls)));
}

function momentItem(moment, urls) {
  const name = fileName(moment.path);
  const image = el("img", { alt: `${name} at ${clock(moment.start)}`, width: 160, height: 90 });
  if (moment.thumbnail_url) loadThumb(image, moment.thumbnail_url, urls);
  const times = `${clock(moment.start)} – ${clock(moment.end)}`;
  const parts = [image, el("span", { class: "name" }, name)];
  parts.push(el("time", { datetime: `PT${moment.start}S` }, times));
  if (moment.kind) parts.push(el("span", { class: "kind" }, moment.kind));
  if (moment.text) parts.push(el("span", { class: "said" }, moment.text));
  const button = el("button", { type: "button", class: "moment", "aria-pressed": "false", title: moment.path }, ...parts);
  button.addEventListener("click", () => openMoment(moment, button));
  return el("li", {}, button);
}

/** A thumbnail fetched with the key (an <img> cannot send it), shown from a blob: URL. */
async function loadThumb(image, url, urls) {
  try {
    const blob = await (await api(url)).blob();
    const local = URL.createObjectURL(blob);
    urls.push(local);
    image.src = local;
  } catch {
    image.alt = `${image.alt} (no thumbnail)`;
  }
}

/** Play a moment's video from its start (its link is signed where the server has a key: a
 * <video> cannot send one), and offer asking about that video. */
function openMoment(moment, button) {
  library.moment = moment;
  for (const other of $("library").querySelectorAll("button.moment")) {
    other.setAttribute("aria-pressed", String(other === button));
  }
  const video = $("library-video");
  const name = fileName(moment.path);
  video.addEventListener("loadedmetadata", () => {
    if (Math.abs(video.currentTime - moment.start) > 0.25) video.currentTime = moment.start;
  }, { once: true });
  video.src = `${moment.video_url}#t=${moment.start}`;
  video.dataset.start = String(moment.start);
  $("library-playing").textContent = `${name}, the moment from ${clock(moment.start)} to ${clock(moment.end)}`;
  $("library-moment").hidden = false;
  $("library-only").disabled = false;
  $("library-only-label").textContent = `Only ${name}`;
}

function videoFailed() {
  const name = library.moment ? fileName(library.moment.path) : "the video";
  showError(new ServerError(`The browser could not play ${name}: its file may be gone, or in a format it cannot play.`), "library");
}

/** POST /v1/library/ask: the question (with the page's answer settings), across the library
 * or only in the video opened; the answer, and the moments it saw (to open). */
async function askLibrary(event) {
  event.preventDefault();
  const question = $("library-question").value.trim();
  if (!question) {
    $("library-question").focus();
    return;
  }
  if (library.asking) return;
  const body = { question, ...answerFields() };
  if ($("library-only").checked && library.moment) body.path = library.moment.path;
  const abort = new AbortController();
  library.asking = abort;
  $("library-ask").disabled = true;
  $("library-answer").hidden = false;
  $("library-answer-text").textContent = "Asking…";
  $("library-answer-meta").textContent = "";
  showMoments($("library-answer-moments"), []);
  const started = performance.now();
  try {
    const data = await (await api("/v1/library/ask", encode(body), abort.signal)).json();
    $("library-answer-text").textContent = data.answer;
    const seen = `from ${plural(data.moments.length, "moment")}`;
    $("library-answer-meta").textContent = `${answerMeta(data.usage, data.finish_reason, performance.now() - started)} · ${seen}`;
    showMoments($("library-answer-moments"), data.moments.map((m) => ({ ...m, kind: `moment ${m.moment}` })));
    clearError("library");
  } catch (error) {
    $("library-answer").hidden = true;
    showError(error, "library");
  } finally {
    library.asking = null;
    $("library-ask").disabled = false;
  }
}

// -- the API key --------------------------------------------------------------------------------

async function useKey(event) {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
  else sessionStorage.removeItem(KEY_STORE);
  clearError();
  if (await loadConfig()) {
    $("current").textContent = state.video ? $("current").textContent : "Key accepted. No video chosen yet.";
    refreshFrames();
  }
}

// -- start --------------------------------------------------------------------------------------

function start() {
  $("api-key").value = state.key;
  $("key-form").addEventListener("submit", useKey);
  $("file").addEventListener("change", chooseFile);
  acceptDrops();
  $("url-form").addEventListener("submit", chooseUrl);
  $("path-form").addEventListener("submit", choosePath);
  $("sampler").addEventListener("change", () => {
    showSamplerFields();
    scheduleFrames();
  });
  for (const id of ["frames", "fps", "every", "start", "end", "max-visual-tokens", "max-tokens"]) {
    $(id).addEventListener("input", scheduleFrames);
  }
  $("transcript").addEventListener("change", scheduleFrames);
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", onQuestionKey);
  $("stop").addEventListener("click", stopAndAsk);
  $("new").addEventListener("click", () => newConversation());
  $("copy-curl").addEventListener("click", () => copy("curl"));
  $("copy-python").addEventListener("click", () => copy("python"));
  $("library-form").addEventListener("submit", searchLibrary);
  $("library-ask-form").addEventListener("submit", askLibrary);
  $("library-video").addEventListener("error", videoFailed);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.answering) stop();
  });
  for (const form of document.forms) form.noValidate = true; // the page says what is wrong
  window.addEventListener("pagehide", saveSession);
  loadConfig();
}

start();
