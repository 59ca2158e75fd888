// The station screen: follows /stations/<name>/events (Server-Sent Events) and shows the view.
// Plain JavaScript, no build step, no external resources. Every text is in STRINGS below.
// The view's shape is documented in gateway/_packline/display.py; any key may be missing.
"use strict";

(function () {
  const STRINGS = {
    "zh-CN": {
      station: "工位",
      operator: "操作员",
      notSignedIn: "未登录 — 请刷工牌",
      connected: "已连接",
      disconnected: "连接中断 — 正在重连…",
      connecting: "连接中…",
      soundOff: "点击启用声音",
      soundOn: "声音已开 (点击静音)",
      switchLang: "English",
      billTitle: "本单清单",
      noSession: "请扫描订单号或运单号开始打包",
      waiting: "等待扫描",
      colDone: "状态",
      colName: "商品",
      colKind: "类型",
      colCount: "已扫/应扫",
      colOrder: "订单",
      progress: "已扫 {packed} / {total} 件",
      labelTitle: "面单",
      noLabel: "—",
      devicesTitle: "设备",
      noDevices: "—",
      seq: "序号",
      code: "条码",
      later: "后发",
      removed: "已移除",
      kind: { item: "商品", gift: "赠品", gift_box: "礼盒", trial: "试用装" },
      sessionState: { open: "打包中", held: "已挂起", stopped: "已停止", closed: "已完成" },
      labelState: { queued: "排队中", printing: "打印中", printed: "已打印", refused: "拒绝打印", uncertain: "状态不明 — 请检查打印机" },
      deviceState: { up: "正常", down: "断开", starting: "启动中", degraded: "异常" },
      deviceKind: { scanner: "扫码枪", printer: "打印机", scale: "电子秤", nvr: "录像机" },
      verdict: {
        OK: "正确", WRONG_ITEM: "错货！", EXTRA: "多扫！", DUPLICATE_UNIT: "重复扫描同一件！",
        UNKNOWN_BARCODE: "未知条码", ALREADY_PACKED: "已打包过 — 停止！", STOP_REFUND: "已退款 — 停止打包！", DECLARATION_INCOMPLETE: "申报要素不全 — 停止！",
        STOP_NO_STOCK: "赠品缺货 — 停止！", MISSING: "缺件，不能封箱", OPENED: "已开始打包", CLOSED: "完成 — 封箱",
        PARTIAL_CLOSE: "部分封箱", SIGNED_IN: "已登录", NOT_SIGNED_IN: "请先刷工牌", NO_SESSION: "请先扫订单",
        WEIGHT_MISMATCH: "重量不符",
      },
    },
    en: {
      station: "Station",
      operator: "Operator",
      notSignedIn: "Not signed in — scan your badge",
      connected: "Connected",
      disconnected: "Connection lost — reconnecting…",
      connecting: "Connecting…",
      soundOff: "Click to enable sound",
      soundOn: "Sound on (click to mute)",
      switchLang: "中文",
      billTitle: "Bill",
      noSession: "Scan an order or waybill barcode to start packing",
      waiting: "Waiting for a scan",
      colDone: "Done",
      colName: "Item",
      colKind: "Kind",
      colCount: "Scanned/expected",
      colOrder: "Order",
      progress: "{packed} / {total} units scanned",
      labelTitle: "Label",
      noLabel: "—",
      devicesTitle: "Devices",
      noDevices: "—",
      seq: "seq",
      code: "code",
      later: "Ships later",
      removed: "Removed",
      kind: { item: "Item", gift: "Gift", gift_box: "Gift box", trial: "Trial" },
      sessionState: { open: "Packing", held: "Held", stopped: "Stopped", closed: "Closed" },
      labelState: { queued: "Queued", printing: "Printing", printed: "Printed", refused: "Refused", uncertain: "Uncertain — check the printer" },
      deviceState: { up: "up", down: "down", starting: "starting", degraded: "degraded" },
      deviceKind: { scanner: "scanner", printer: "printer", scale: "scale", nvr: "NVR" },
      verdict: {
        OK: "OK", WRONG_ITEM: "WRONG ITEM!", EXTRA: "EXTRA — scanned too often!", DUPLICATE_UNIT: "SAME UNIT SCANNED TWICE!",
        UNKNOWN_BARCODE: "Unknown barcode", ALREADY_PACKED: "ALREADY PACKED — STOP!", STOP_REFUND: "REFUNDED — STOP PACKING!", DECLARATION_INCOMPLETE: "CUSTOMS DECLARATION INCOMPLETE — STOP!",
        STOP_NO_STOCK: "GIFT OUT OF STOCK — STOP!", MISSING: "Items missing: cannot close", OPENED: "Packing started",
        CLOSED: "Complete — closed", PARTIAL_CLOSE: "Partially closed", SIGNED_IN: "Signed in",
        NOT_SIGNED_IN: "Scan your badge first", NO_SESSION: "Scan an order first", WEIGHT_MISMATCH: "Weight mismatch",
      },
    },
  };

  // Verdict -> colour class and sound. Others (and verdicts this page does not know yet): amber,
  // with the attention sound when the view says "alarm".
  const GOOD = new Set(["OK", "CLOSED"]);
  const ERROR = new Set(["WRONG_ITEM", "EXTRA", "DUPLICATE_UNIT", "UNKNOWN_BARCODE", "MISSING"]);
  const STOP = new Set(["STOP_REFUND", "STOP_NO_STOCK", "ALREADY_PACKED", "DECLARATION_INCOMPLETE"]);
  const SOUND_OF = {
    OK: "ok", CLOSED: "closed",
    WRONG_ITEM: "wrong", UNKNOWN_BARCODE: "wrong", MISSING: "wrong",
    EXTRA: "over", DUPLICATE_UNIT: "over",
    STOP_REFUND: "stop", STOP_NO_STOCK: "stop", ALREADY_PACKED: "stop", DECLARATION_INCOMPLETE: "stop",
  };
  const ICON = { good: "✔", error: "✖", stop: "⊘", warn: "⚠", none: "" };  // glyphs DejaVu Sans has (a bare kiosk)

  const station = document.body.dataset.station || "";
  const $ = (id) => document.getElementById(id);
  const store = {
    get(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } },
  };

  // -- language -------------------------------------------------------------------------------
  const queryLang = new URLSearchParams(window.location.search).get("lang");
  let lang = queryLang === "en" || queryLang === "zh-CN" || queryLang === "zh" ? queryLang : store.get("station.lang");
  if (lang === "zh") lang = "zh-CN";
  if (lang !== "en") lang = "zh-CN";
  if (queryLang) store.set("station.lang", lang);
  const t = (key) => STRINGS[lang][key];
  const tIn = (table, key) => (key && STRINGS[lang][table][key]) || key || "";

  // -- sound: Web Audio oscillator patterns, no files ----------------------------------------
  // Browsers start audio only after a user gesture: the button (or any click / key) resumes it;
  // the wish is remembered ("on" / "off"), the gesture is needed again after each page load.
  let audio = null;
  let soundWanted = store.get("station.sound") === "on";

  function audioRunning() { return audio !== null && audio.state === "running"; }

  function ensureAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (audio === null) audio = new Context();
    if (audio.state === "suspended") audio.resume().then(renderSound, renderSound);
  }

  // [frequency Hz, start s, duration s, wave]
  const PATTERNS = {
    ok: [[1320, 0, 0.08, "sine"]],
    closed: [[880, 0, 0.1, "sine"], [1320, 0.12, 0.18, "sine"]],
    wrong: [[220, 0, 0.18, "square"], [220, 0.25, 0.18, "square"], [220, 0.5, 0.18, "square"]],
    over: [[1000, 0, 0.12, "sawtooth"], [500, 0.14, 0.25, "sawtooth"], [1000, 0.5, 0.12, "sawtooth"], [500, 0.64, 0.25, "sawtooth"]],
    stop: [0, 1, 2, 3, 4, 5].map((i) => [i % 2 ? 1200 : 600, i * 0.3, 0.28, "square"]),
    attention: [[660, 0, 0.15, "triangle"], [660, 0.25, 0.15, "triangle"]],
  };

  function play(name) {
    const pattern = PATTERNS[name];
    if (!pattern || !soundWanted || !audioRunning()) return;
    document.body.dataset.sound = name;  // what played last: for a look in the developer tools, and tests
    const now = audio.currentTime + 0.02;
    for (const [frequency, start, duration, wave] of pattern) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = wave;
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.4, now + start + 0.01);
      gain.gain.setValueAtTime(0.4, now + start + duration - 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + duration);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(now + start);
      oscillator.stop(now + start + duration + 0.02);
    }
  }

  function renderSound() {
    const on = soundWanted && audioRunning();
    const button = $("sound");
    button.textContent = on ? t("soundOn") : t("soundOff");
    button.className = "control " + (on ? "sound-on" : "sound-off");
    button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  $("sound").addEventListener("click", () => {
    if (soundWanted && audioRunning()) {
      soundWanted = false;
    } else {
      soundWanted = true;
      ensureAudio();
      play("ok");
    }
    store.set("station.sound", soundWanted ? "on" : "off");
    renderSound();
  });
  // Any gesture on the page unlocks the audio a packer asked for before (a reload, a restart).
  const unlock = () => { if (soundWanted) { ensureAudio(); renderSound(); } };
  document.addEventListener("pointerdown", unlock);
  document.addEventListener("keydown", unlock);

  // -- rendering -----------------------------------------------------------------------------
  let view = null;
  let online = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function verdictClass(verdict, alarm) {
    if (!verdict) return "none";
    if (GOOD.has(verdict)) return "good";
    if (ERROR.has(verdict)) return "error";
    if (STOP.has(verdict)) return "stop";
    return "warn";
  }

  function renderStatic() {
    document.documentElement.lang = lang;
    $("station-label").textContent = t("station");
    $("lang").textContent = t("switchLang");
    $("lang").lang = lang === "en" ? "zh-CN" : "en";
    $("bill-title").textContent = t("billTitle");
    $("col-done").textContent = t("colDone");
    $("col-name").textContent = t("colName");
    $("col-kind").textContent = t("colKind");
    $("col-count").textContent = t("colCount");
    $("col-order").textContent = t("colOrder");
    $("label-title").textContent = t("labelTitle");
    $("devices-title").textContent = t("devicesTitle");
    document.title = t("station") + " " + station;
    renderSound();
    renderConnection();
  }

  function renderConnection() {
    const node = $("connection");
    node.textContent = online === null ? t("connecting") : online ? t("connected") : t("disconnected");
    node.className = "connection " + (online ? "connection-up" : "connection-down");
    document.body.classList.toggle("offline", online === false);
  }

  function renderVerdict(last) {
    const box = $("verdict");
    const verdict = last && last.verdict ? String(last.verdict) : "";
    const kind = verdictClass(verdict, last ? last.alarm : undefined);
    box.className = "verdict verdict-" + kind;
    box.dataset.verdict = verdict;
    const title = verdict ? tIn("verdict", verdict) : t("waiting");
    const icon = kind === "warn" && last && last.alarm === false ? "" : ICON[kind];  // OPENED, SIGNED_IN: calm
    $("verdict-title").textContent = (icon ? icon + " " : "") + title;
    let message = "";
    if (last) {
      const mine = lang === "en" ? last.message_en : last.message_zh;
      const other = lang === "en" ? last.message_zh : last.message_en;
      message = mine || other || "";
    }
    $("verdict-message").textContent = message;
    $("verdict-code").textContent = last && last.code ? t("code") + ": " + last.code : "";
  }

  function renderOperator(operator) {
    const node = $("operator");
    node.textContent = operator ? t("operator") + ": " + operator : t("notSignedIn");
    node.className = "operator " + (operator ? "operator-in" : "operator-out");
  }

  function renderSession(session) {
    const rows = $("component-rows");
    rows.replaceChildren();
    const table = $("components");
    if (!session) {
      table.hidden = true;
      $("no-session").hidden = false;
      $("no-session").textContent = t("noSession");
      $("session-state").textContent = "";
      $("session-state").className = "session-state";
      $("progress").textContent = "";
      $("orders").textContent = "";
      return;
    }
    table.hidden = false;
    $("no-session").hidden = true;
    const state = session.state || "";
    $("session-state").textContent = tIn("sessionState", state);
    $("session-state").className = "session-state session-" + state;
    const orders = Array.isArray(session.orders) ? session.orders : [];
    $("orders").textContent = orders.join("  ·  ");
    table.classList.toggle("single-order", orders.length <= 1);  // the order column says nothing new
    let packedUnits = 0;
    let totalUnits = 0;
    const components = Array.isArray(session.components) ? session.components : [];
    const lastId = view && view.last ? view.last.component_id : null;
    for (const component of components) {
      const quantity = Number(component.quantity == null ? 1 : component.quantity);
      const packed = Number(component.packed || 0);
      const later = component.parcel != null && Number(component.parcel) !== 1;
      const removed = component.status === "removed";
      const done = !later && !removed && (component.status === "packed" || component.status === "shipped" || packed >= quantity);
      if (!later && !removed) {
        totalUnits += quantity;
        packedUnits += Math.min(packed, quantity);
      }
      const row = element("tr", "component");
      row.dataset.componentId = component.component_id || "";
      if (done) row.classList.add("component-done");
      if (later) row.classList.add("component-later");
      if (removed) row.classList.add("component-removed");
      if (lastId && component.component_id === lastId) row.classList.add("component-last");
      const mark = removed ? "✖" : later ? "→" : done ? "✔" : packed > 0 ? "◐" : "☐";
      row.appendChild(element("td", "tick", mark));
      const name = element("td", "name");
      name.appendChild(element("div", "product-name", component.name || component.sku || ""));
      if (component.name && component.sku) name.appendChild(element("div", "sku", component.sku));
      row.appendChild(name);
      const kindCell = element("td", "kind");
      const kind = component.kind || "item";
      if (kind !== "item") kindCell.appendChild(element("span", "badge badge-" + kind, tIn("kind", kind)));
      if (later) kindCell.appendChild(element("span", "badge badge-later", t("later")));
      if (removed) kindCell.appendChild(element("span", "badge badge-removed", t("removed")));
      row.appendChild(kindCell);
      row.appendChild(element("td", "count", later ? "—" : packed + "/" + quantity));
      row.appendChild(element("td", "order", component.order_id || ""));
      rows.appendChild(row);
    }
    $("progress").textContent = t("progress").replace("{packed}", packedUnits).replace("{total}", totalUnits);
  }

  function renderLabel(label) {
    const node = $("label");
    if (!label || !label.state) {
      node.textContent = t("noLabel");
      node.className = "label-state";
      return;
    }
    node.textContent = tIn("labelState", label.state) + (label.reason ? " — " + label.reason : "");
    node.className = "label-state label-" + label.state;
  }

  function renderDevices(devices) {
    const list = $("devices");
    list.replaceChildren();
    if (!Array.isArray(devices) || devices.length === 0) {
      list.appendChild(element("li", "device", t("noDevices")));
      return;
    }
    for (const device of devices) {
      const state = device.state || "";
      const item = element("li", "device device-" + (state === "up" ? "up" : "down"));
      item.appendChild(element("span", "device-name", (device.device || "") + (device.kind ? " (" + tIn("deviceKind", device.kind) + ")" : "")));
      item.appendChild(element("span", "device-state", tIn("deviceState", state)));
      if (device.detail && state !== "up") item.appendChild(element("span", "device-detail", device.detail));
      list.appendChild(item);
    }
  }

  function render() {
    renderStatic();
    const current = view || {};
    renderOperator(current.operator);
    renderVerdict(current.last);
    renderSession(current.session);
    renderLabel(current.label);
    renderDevices(current.devices);
    $("seq").textContent = current.seq != null ? t("seq") + " " + current.seq : "";
  }

  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    store.set("station.lang", lang);
    render();
  });

  // -- the live stream ----------------------------------------------------------------------
  // A verdict sounds once, when it is new: not the one already shown when the page (re)loads.
  let lastKey = null;

  function verdictKey(last) {
    return last ? [last.at_ms, last.verdict, last.code, last.component_id].join("|") : "";
  }

  function receive(next) {
    const first = view === null;
    view = next && typeof next === "object" ? next : {};
    const key = verdictKey(view.last);
    if (!first && key && key !== lastKey) {
      const verdict = String(view.last.verdict || "");
      play(SOUND_OF[verdict] || (view.last.alarm ? "attention" : ""));
    }
    lastKey = key;
    render();
  }

  function connect() {
    const source = new EventSource("/stations/" + encodeURIComponent(station) + "/events");
    source.onopen = () => { online = true; renderConnection(); };
    source.onmessage = (event) => {
      online = true;
      try { receive(JSON.parse(event.data)); } catch (error) { console.error("bad view", error); }
    };
    source.onerror = () => {
      online = false;
      renderConnection();
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an HTTP error): try again ourselves.
        window.setTimeout(connect, 3000);
      }
    };
  }

  render();
  connect();
})();
