// The operators' dashboard: stations and live verdicts, outbox, anomaly board, OCI with its
// trend, after-sales lookup and packing proof, all from the local API (gateway/_server/dashboard.py).
// Plain JavaScript, no build step, no external resources. Every text is in STRINGS below.
// The token lives in sessionStorage (this tab only) and goes out as "Authorization: Bearer"
// with fetch: never in a URL. Values are written with textContent, never as HTML.
"use strict";

(function () {
  const STRINGS = {
    "zh-CN": {
      title: "运营看板",
      switchLang: "English",
      navStations: "工位", navOutbox: "转发", navBoard: "异常", navOci: "可信指数", navLookup: "售后查询", navSandbox: "规则沙盒", navCustoms: "申报预检",
      signInTitle: "登录",
      tokenLabel: "API 令牌",
      tokenHelp: "管理员令牌在数据目录的 api-token 文件中；或用 gateway token create 创建的令牌。只保存在本标签页。",
      tenantLabel: "租户",
      tenantHelp: "要查看的租户（例如 t1）；租户令牌只能看它自己的租户。",
      signIn: "登录",
      signOut: "退出",
      refresh: "刷新",
      apply: "切换",
      tenantSwitch: "租户",
      who: "租户 {tenant}",
      needToken: "请填写 API 令牌",
      needTenant: "请填写租户",
      badToken: "令牌无效或已撤销，请重新登录",
      unreachable: "无法连接网关：{error}",
      stationsTitle: "工位与实时判定",
      stationsNeedAll: "此令牌只能查看一个租户：工位列表需要租户为 * 的令牌；下面的工位来自设备列表。",
      noStations: "没有配置工位（[stations.*]）",
      devicesTitle: "设备",
      devicesSummary: "正常 {up} · 断开 {down} · 启动中 {starting}",
      colDeviceStation: "工位", colDevice: "设备", colDeviceKind: "类型", colDeviceState: "状态",
      colDeviceSince: "自", colDeviceDetail: "说明",
      operator: "操作员", notSignedIn: "未登录",
      session: "本单", label: "面单", noVerdicts: "暂无扫描", live: "实时", offline: "连接中断 — 正在重连…",
      outboxTitle: "转发（outbox）",
      outboxNeedAll: "转发状态需要租户为 * 的令牌。",
      outboxState: "状态", outboxBacklog: "积压", outboxOldest: "最早积压", outboxDead: "死信",
      outboxDelivered: "已送达", outboxLastError: "最近错误", outboxLastSuccess: "最近成功", outboxUpstream: "上游",
      events: "{n} 条", none: "无",
      forwardState: { disabled: "未启用（没有 [upstream] url）", idle: "空闲", sending: "发送中", backoff: "重试等待中" },
      boardTitle: "异常看板",
      ackByLabel: "我的名字（确认时记录）",
      ackedLabel: "显示",
      ackedAll: "全部", ackedFalse: "未确认", ackedTrue: "已确认",
      colKind: "类型", colOrder: "订单", colReason: "原因", colAge: "已持续", colAck: "确认",
      ack: "确认", acked: "{by} 于 {at} 确认",
      needBy: "请先填写“我的名字”，再点确认",
      boardEmpty: "没有异常",
      more: "更多",
      allKinds: "全部",
      kind: {
        unshipped_24h: "超 24 小时未发货", repeat_order_72h: "72 小时内重复下单", status_disagrees: "状态不一致",
        quarantined: "已隔离事件", dead_letter: "死信", waybill_timeout: "无运单超时", intercept: "拦截",
        gift_shortfall: "赠品缺货", held: "挂起", declaration_incomplete: "申报要素不全",
      },
      ociTitle: "订单可信指数（OCI）",
      score: "总分", part: { freshness: "及时性", consistency: "一致性", traceability: "可追溯性" },
      ociOrders: "{n} 个订单，计算于 {at}",
      offenders: "{n} 单拉低",
      drillTitle: "拉低“{part}”的订单",
      colDrillOrder: "订单", colDrillWhy: "原因",
      trendEmpty: "还没有趋势数据",
      chartLabel: "近 {hours} 小时趋势",
      formula: "公式",
      lookupTitle: "售后查询",
      byPhone: "手机号", byOrder: "订单号", byWaybill: "运单号", byNick: "买家昵称",
      valuePlaceholder: "手机号 / 订单号 / 运单号 / 昵称",
      keywordPlaceholder: "关键词，如 赠品、礼盒",
      search: "查询",
      searching: "查询中…",
      found: "{query}：{n} 个订单（近 {days} 天），{h} 项匹配关键词",
      channel: "渠道", status: "状态", waybills: "运单", noWaybill: "暂无运单", amount: "金额",
      scanAt: "{time} 扫描（{station}，{operator}）",
      clipAt: "录像第 {s} 秒",
      clipPending: "录像待取",
      snapshot: "封箱快照",
      proof: "打包凭证",
      proofTitle: "打包凭证 {order}",
      proofOpen: "在新标签页打开",
      proofPng: "下载 PNG",
      proofClose: "关闭",
      proofLoading: "正在生成凭证…",
      proofPngMissing: "PNG 不可用：{error}",
      copied: "已复制",
      copy: "复制链接",
      age: { s: "{n} 秒", m: "{n} 分钟", h: "{n} 小时", d: "{n} 天" },
      errorPrefix: "出错：",
      tenantUnknown: "租户 {tenant} 没有找到：租户名写错了，或此令牌不能查看它（{error}）",
      roleTooLow: "权限不足：此操作需要 {role} 或更高角色，请换用有该角色的令牌",
      footer: "网关运营看板 · 数据每 {s} 秒刷新",
    },
    en: {
      title: "Operations dashboard",
      switchLang: "中文",
      navStations: "Stations", navOutbox: "Forwarding", navBoard: "Anomalies", navOci: "OCI", navLookup: "After-sales", navSandbox: "Rule sandbox", navCustoms: "Customs",
      signInTitle: "Sign in",
      tokenLabel: "API token",
      tokenHelp: "The admin token is the file api-token in the data directory; or a token from `gateway token create`. Kept in this tab only.",
      tenantLabel: "Tenant",
      tenantHelp: "The tenant to look at (e.g. t1); a tenant's token sees only its own tenant.",
      signIn: "Sign in",
      signOut: "Sign out",
      refresh: "Refresh",
      apply: "Switch",
      tenantSwitch: "Tenant",
      who: "tenant {tenant}",
      needToken: "Enter an API token",
      needTenant: "Enter a tenant",
      badToken: "The token is wrong or revoked: sign in again",
      unreachable: "Cannot reach the gateway: {error}",
      stationsTitle: "Stations and live verdicts",
      stationsNeedAll: "This token sees one tenant: the station list needs a token of tenant *; the stations below come from the device list.",
      noStations: "No stations configured ([stations.*])",
      devicesTitle: "Devices",
      devicesSummary: "up {up} · down {down} · starting {starting}",
      colDeviceStation: "Station", colDevice: "Device", colDeviceKind: "Kind", colDeviceState: "State",
      colDeviceSince: "Since", colDeviceDetail: "Detail",
      operator: "Operator", notSignedIn: "not signed in",
      session: "Parcel", label: "Label", noVerdicts: "No scans yet", live: "live", offline: "Connection lost — reconnecting…",
      outboxTitle: "Forwarding (outbox)",
      outboxNeedAll: "The forwarding state needs a token of tenant *.",
      outboxState: "State", outboxBacklog: "Backlog", outboxOldest: "Oldest waiting", outboxDead: "Dead letters",
      outboxDelivered: "Delivered", outboxLastError: "Last error", outboxLastSuccess: "Last success", outboxUpstream: "Upstream",
      events: "{n} events", none: "none",
      forwardState: { disabled: "off (no [upstream] url)", idle: "idle", sending: "sending", backoff: "waiting to retry" },
      boardTitle: "Anomaly board",
      ackByLabel: "My name (recorded with an ack)",
      ackedLabel: "Show",
      ackedAll: "all", ackedFalse: "not acknowledged", ackedTrue: "acknowledged",
      colKind: "Kind", colOrder: "Order", colReason: "Reason", colAge: "Age", colAck: "Ack",
      ack: "Acknowledge", acked: "acknowledged by {by} at {at}",
      needBy: "Type your name under \"My name\" first, then acknowledge",
      boardEmpty: "No anomalies",
      more: "More",
      allKinds: "all",
      kind: {
        unshipped_24h: "unshipped 24 h", repeat_order_72h: "repeat order 72 h", status_disagrees: "statuses disagree",
        quarantined: "quarantined", dead_letter: "dead letter", waybill_timeout: "no waybill", intercept: "intercept",
        gift_shortfall: "gift shortfall", held: "held", declaration_incomplete: "declaration incomplete",
      },
      ociTitle: "Order Credibility Index (OCI)",
      score: "Score", part: { freshness: "Freshness", consistency: "Consistency", traceability: "Traceability" },
      ociOrders: "{n} orders, computed {at}",
      offenders: "{n} pull it down",
      drillTitle: "Orders pulling \"{part}\" down",
      colDrillOrder: "Order", colDrillWhy: "Why",
      trendEmpty: "No trend yet",
      chartLabel: "Trend, last {hours} hours",
      formula: "Formula",
      lookupTitle: "After-sales lookup",
      byPhone: "Phone", byOrder: "Order id", byWaybill: "Waybill", byNick: "Buyer nick",
      valuePlaceholder: "phone / order id / waybill / nick",
      keywordPlaceholder: "keyword, e.g. 赠品, 礼盒, gift",
      search: "Look up",
      searching: "Looking up…",
      found: "{query}: {n} orders (last {days} days), {h} components match the keyword",
      channel: "Channel", status: "Status", waybills: "Waybills", noWaybill: "no waybill yet", amount: "Amount",
      scanAt: "scanned {time} ({station}, {operator})",
      clipAt: "clip at {s} s",
      clipPending: "clip pending",
      snapshot: "Snapshot at close",
      proof: "Packing proof",
      proofTitle: "Packing proof {order}",
      proofOpen: "Open in a new tab",
      proofPng: "Download PNG",
      proofClose: "Close",
      proofLoading: "Making the proof…",
      proofPngMissing: "PNG unavailable: {error}",
      copied: "Copied",
      copy: "Copy link",
      age: { s: "{n} s", m: "{n} min", h: "{n} h", d: "{n} d" },
      errorPrefix: "Error: ",
      tenantUnknown: "Tenant {tenant} not found: a typo in its name, or this token may not see it ({error})",
      roleTooLow: "Not allowed: {error}",
      footer: "Gateway operations dashboard · data refreshes every {s} s",
    },
  };
  // Verdict words: the station screen's (gateway/_server/static/station.js), shortened.
  const VERDICTS = {
    "zh-CN": {
      OK: "正确", WRONG_ITEM: "错货", EXTRA: "多扫", DUPLICATE_UNIT: "重复扫描", UNKNOWN_BARCODE: "未知条码",
      ALREADY_PACKED: "已打包过", STOP_REFUND: "已退款 — 停止", DECLARATION_INCOMPLETE: "申报不全 — 停止", STOP_NO_STOCK: "赠品缺货 — 停止", MISSING: "缺件",
      OPENED: "开始打包", CLOSED: "封箱", PARTIAL_CLOSE: "部分封箱", SIGNED_IN: "已登录", NOT_SIGNED_IN: "未登录",
      NO_SESSION: "无打包单", WEIGHT_MISMATCH: "重量不符",
    },
    en: {
      OK: "OK", WRONG_ITEM: "wrong item", EXTRA: "extra", DUPLICATE_UNIT: "same unit twice", UNKNOWN_BARCODE: "unknown barcode",
      ALREADY_PACKED: "already packed", STOP_REFUND: "refunded — stop", DECLARATION_INCOMPLETE: "declaration incomplete — stop", STOP_NO_STOCK: "gift out of stock — stop",
      MISSING: "missing", OPENED: "opened", CLOSED: "closed", PARTIAL_CLOSE: "partial close", SIGNED_IN: "signed in",
      NOT_SIGNED_IN: "not signed in", NO_SESSION: "no parcel", WEIGHT_MISMATCH: "weight mismatch",
    },
  };
  const WORDS = {
    "zh-CN": {
      deviceState: { up: "正常", down: "断开", starting: "启动中", degraded: "异常" },
      deviceKind: { scanner: "扫码枪", printer: "打印机", scale: "电子秤", nvr: "录像机" },
      sessionState: { open: "打包中", held: "已挂起", stopped: "已停止", closed: "已完成" },
      labelState: { queued: "排队中", printing: "打印中", printed: "已打印", refused: "拒绝打印", uncertain: "状态不明", cancelled: "已取消" },
      componentKind: { item: "商品", gift: "赠品", gift_box: "礼盒", trial: "试用装" },
    },
    en: {
      deviceState: { up: "up", down: "down", starting: "starting", degraded: "degraded" },
      deviceKind: { scanner: "scanner", printer: "printer", scale: "scale", nvr: "NVR" },
      sessionState: { open: "packing", held: "held", stopped: "stopped", closed: "closed" },
      labelState: { queued: "queued", printing: "printing", printed: "printed", refused: "refused", uncertain: "uncertain", cancelled: "cancelled" },
      componentKind: { item: "item", gift: "gift", gift_box: "gift box", trial: "trial" },
    },
  };
  const GOOD = new Set(["OK", "CLOSED"]);
  const ERROR = new Set(["WRONG_ITEM", "EXTRA", "DUPLICATE_UNIT", "UNKNOWN_BARCODE", "MISSING"]);
  const STOP = new Set(["STOP_REFUND", "STOP_NO_STOCK", "ALREADY_PACKED", "DECLARATION_INCOMPLETE"]);
  const PARTS = ["freshness", "consistency", "traceability"];
  const KINDS = ["unshipped_24h", "repeat_order_72h", "status_disagrees", "quarantined", "dead_letter",
                 "waybill_timeout", "intercept", "gift_shortfall", "held", "declaration_incomplete"];
  const REFRESH_S = 30;
  const VERDICTS_KEPT = 8;
  const TREND_HOURS = 48;

  const $ = (id) => document.getElementById(id);
  const local = {
    get(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } },
  };
  const session = {
    get(key) { try { return window.sessionStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window.sessionStorage.setItem(key, value); } catch (e) { /* private mode */ } },
    remove(key) { try { window.sessionStorage.removeItem(key); } catch (e) { /* private mode */ } },
  };

  // -- language (as the station screens: ?lang= wins and is remembered) -----------------------
  const query = new URLSearchParams(window.location.search);
  const queryLang = query.get("lang");
  let lang = queryLang === "en" || queryLang === "zh-CN" || queryLang === "zh" ? queryLang : local.get("dashboard.lang");
  if (lang === "zh") lang = "zh-CN";
  if (lang !== "en") lang = "zh-CN";
  if (queryLang) local.set("dashboard.lang", lang);
  const t = (key) => STRINGS[lang][key];
  const fill = (text, values) => String(text).replace(/\{(\w+)\}/g, (m, k) => (values[k] === undefined || values[k] === null ? "" : String(values[k])));
  const tf = (key, values) => fill(t(key), values);
  const word = (table, key) => (key && WORDS[lang][table][key]) || key || "";
  const verdictWord = (verdict) => VERDICTS[lang][verdict] || verdict || "";

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(ms) {
    if (ms === null || ms === undefined) return "—";
    const date = new Date(Number(ms));
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function age(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    const table = t("age");
    if (s < 60) return fill(table.s, { n: s });
    if (s < 3600) return fill(table.m, { n: Math.floor(s / 60) });
    if (s < 86400) return fill(table.h, { n: (s / 3600).toFixed(1).replace(/\.0$/, "") });
    return fill(table.d, { n: (s / 86400).toFixed(1).replace(/\.0$/, "") });
  }

  const percent = (value) => (value === null || value === undefined ? "—" : (Number(value) * 100).toFixed(1) + "%");

  // -- the API: token from sessionStorage, 401 -> sign-in ---------------------------------------
  let token = session.get("dashboard.token") || "";
  let tenant = query.get("tenant") || session.get("dashboard.tenant") || "";

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
    }
  }

  function errorText(error) {
    if (!(error instanceof ApiError)) return tf("unreachable", { error: error && error.message ? error.message : String(error) });
    const body = error.body;
    const message = (lang === "zh-CN" && body.message_zh) || body.error || error.message;
    if (error.status === 403 && body.needed_role) return tf("roleTooLow", { role: body.needed_role, error: message });
    // Another tenant's data answers exactly as a missing one (the API says nothing more).
    if (error.status === 404 && !body.message_zh) return tf("tenantUnknown", { tenant, error: message });
    return t("errorPrefix") + message;
  }

  async function request(path, options) {
    const init = Object.assign({ cache: "no-store" }, options || {});
    init.headers = Object.assign({ Authorization: "Bearer " + token }, init.headers || {});
    const response = await fetch(path, init);
    if (response.status === 401) {
      signOut(t("badToken"));
      throw new ApiError(401, { error: t("badToken") });
    }
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  const tenantPath = (rest) => "/api/v1/tenants/" + encodeURIComponent(tenant) + rest;

  // -- static texts ------------------------------------------------------------------------------
  const TEXTS = {
    title: "title", "nav-stations": "navStations", "nav-outbox": "navOutbox", "nav-board": "navBoard",
    "nav-oci": "navOci", "nav-lookup": "navLookup", "nav-sandbox": "navSandbox", "nav-customs": "navCustoms", "sign-in-title": "signInTitle", "token-label": "tokenLabel",
    "token-help": "tokenHelp", "tenant-label": "tenantLabel", "tenant-help": "tenantHelp", "sign-in-button": "signIn",
    "sign-out": "signOut", refresh: "refresh", "tenant-apply": "apply", "tenant-switch-label": "tenantSwitch",
    "stations-title": "stationsTitle", "devices-title": "devicesTitle", "col-device-station": "colDeviceStation",
    "col-device": "colDevice", "col-device-kind": "colDeviceKind", "col-device-state": "colDeviceState",
    "col-device-since": "colDeviceSince", "col-device-detail": "colDeviceDetail", "outbox-title": "outboxTitle",
    "board-title": "boardTitle", "ack-by-label": "ackByLabel", "board-acked-label": "ackedLabel", "acked-all": "ackedAll",
    "acked-false": "ackedFalse", "acked-true": "ackedTrue", "col-kind": "colKind", "col-order": "colOrder",
    "col-reason": "colReason", "col-age": "colAge", "col-ack": "colAck", "board-more": "more", "oci-title": "ociTitle",
    "col-drill-order": "colDrillOrder", "col-drill-why": "colDrillWhy", "oci-drill-more": "more",
    "lookup-title": "lookupTitle", "by-phone": "byPhone", "by-order": "byOrder", "by-waybill": "byWaybill",
    "by-nick": "byNick", "lookup-button": "search", "proof-open": "proofOpen", "proof-png": "proofPng",
    "proof-close": "proofClose",
  };

  function renderStatic() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const [id, key] of Object.entries(TEXTS)) {
      const node = $(id);
      if (node) node.textContent = t(key);
    }
    $("lang").textContent = t("switchLang");
    $("lang").lang = lang === "en" ? "zh-CN" : "en";
    $("lookup-value").placeholder = t("valuePlaceholder");
    $("lookup-keyword").placeholder = t("keywordPlaceholder");
    $("who").textContent = token ? tf("who", { tenant }) : "";
    $("footer").textContent = tf("footer", { s: REFRESH_S });
  }

  // -- sign-in -----------------------------------------------------------------------------------
  let refreshTimer = null;

  function showSignedIn(signedIn) {
    document.body.classList.toggle("signed-out", !signedIn);
    document.body.classList.toggle("signed-in", signedIn);
    $("sign-in").hidden = signedIn;
    $("main").hidden = !signedIn;
    $("tenant-form").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    $("refresh").hidden = !signedIn;
    $("nav").hidden = !signedIn;
  }

  function signOut(message) {
    token = "";
    session.remove("dashboard.token");
    if (refreshTimer !== null) window.clearInterval(refreshTimer);
    refreshTimer = null;
    closeStreams();
    drill = { part: "", items: [], next: null, total: 0 };
    boardKind = "";
    clearLookup();
    $("token").value = "";
    $("tenant").value = tenant;
    $("sign-in-error").textContent = message || "";
    showSignedIn(false);
    renderStatic();
  }

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("token").value.trim();
    const typedTenant = $("tenant").value.trim();
    if (!typed) { $("sign-in-error").textContent = t("needToken"); return; }
    if (!typedTenant) { $("sign-in-error").textContent = t("needTenant"); return; }
    token = typed;
    tenant = typedTenant;
    session.set("dashboard.token", token);
    session.set("dashboard.tenant", tenant);
    $("token").value = "";
    start();
  });

  $("sign-out").addEventListener("click", () => signOut(""));

  $("tenant-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("tenant-switch").value.trim();
    if (!typed) return;
    tenant = typed;
    session.set("dashboard.tenant", tenant);
    clearLookup();
    renderStatic();
    refreshAll();
  });

  $("refresh").addEventListener("click", () => refreshAll());

  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    local.set("dashboard.lang", lang);
    renderAll();
  });

  // -- stations, devices, live verdicts ----------------------------------------------------------
  const streams = new Map();     // station -> EventSource
  const liveViews = new Map();   // station -> newest view
  const verdicts = new Map();    // station -> [last, ...] newest first
  const online = new Map();      // station -> bool
  let stationReports = [];
  let stationNames = [];
  let devices = null;
  let stationsNote = "";

  function closeStreams() {
    for (const source of streams.values()) source.close();
    streams.clear();
  }

  function follow(name) {
    if (streams.has(name)) return;
    const source = new EventSource("/stations/" + encodeURIComponent(name) + "/events");
    streams.set(name, source);
    source.onopen = () => { online.set(name, true); renderStations(); };
    source.onmessage = (event) => {
      let view = null;
      try { view = JSON.parse(event.data); } catch (e) { return; }
      online.set(name, true);
      liveViews.set(name, view);
      const last = view && view.last;
      if (last && last.verdict) {
        const list = verdicts.get(name) || [];
        const key = [last.at_ms, last.verdict, last.code, last.component_id].join("|");
        if (!list.length || list[0].key !== key) {
          list.unshift(Object.assign({ key }, last));
          list.length = Math.min(list.length, VERDICTS_KEPT);
          verdicts.set(name, list);
        }
      }
      renderStations();
    };
    source.onerror = () => {
      online.set(name, false);
      renderStations();
      if (source.readyState === EventSource.CLOSED) {
        streams.delete(name);
        window.setTimeout(() => { if (token) follow(name); }, 3000);
      }
    };
  }

  async function loadStations() {
    stationsNote = "";
    try {
      devices = await api("/api/v1/devices");
    } catch (error) {
      devices = null;
      stationsNote = errorText(error);
    }
    try {
      stationReports = (await api("/api/v1/stations")).stations || [];
      stationNames = stationReports.map((s) => s.station);
    } catch (error) {
      stationReports = [];
      const fromDevices = devices && Array.isArray(devices.devices) ? devices.devices.map((d) => d.station) : [];
      stationNames = [...new Set(fromDevices)].sort();
      if (error instanceof ApiError && error.status === 403) stationsNote = t("stationsNeedAll");
      else if (error instanceof ApiError && error.status === 404) stationsNote = t("noStations");
      else stationsNote = errorText(error);
    }
    for (const name of stationNames) follow(name);
    renderStations();
    renderDevices();
  }

  function verdictClass(verdict) {
    if (GOOD.has(verdict)) return "good";
    if (ERROR.has(verdict)) return "error";
    if (STOP.has(verdict)) return "stop";
    return "warn";
  }

  function renderStations() {
    $("stations-note").textContent = stationsNote;
    const box = $("stations");
    box.replaceChildren();
    for (const name of stationNames) {
      const report = stationReports.find((s) => s.station === name) || {};
      const view = liveViews.get(name) || {};
      const card = element("article", "station");
      card.dataset.station = name;
      const head = element("header", "station-head");
      head.appendChild(element("h3", "station-name", name));
      const up = online.get(name);
      head.appendChild(element("span", "live " + (up ? "live-up" : "live-down"), up ? t("live") : t("offline")));
      card.appendChild(head);
      const operator = view.operator || report.operator;
      card.appendChild(element("div", "station-operator", t("operator") + ": " + (operator || t("notSignedIn"))));
      const parcel = view.session || report.session;
      if (parcel) {
        const orders = Array.isArray(parcel.orders) ? parcel.orders.join(", ") : "";
        card.appendChild(element("div", "station-session", t("session") + ": " + word("sessionState", parcel.state) + " · " + orders));
      }
      const label = view.label || report.label;
      if (label && label.state) {
        card.appendChild(element("div", "station-label", t("label") + ": " + word("labelState", label.state) + (label.reason ? " — " + label.reason : "")));
      }
      const list = element("ol", "verdicts");
      const seen = verdicts.get(name) || [];
      if (!seen.length && report.last && report.last.verdict) seen.push(Object.assign({ key: "report" }, report.last));
      if (!seen.length) list.appendChild(element("li", "verdict-none", t("noVerdicts")));
      for (const last of seen) {
        const item = element("li", "verdict verdict-" + verdictClass(last.verdict));
        item.dataset.verdict = last.verdict;
        item.appendChild(element("time", "verdict-time", when(last.at_ms).slice(11)));
        item.appendChild(element("strong", "verdict-word", verdictWord(last.verdict)));
        const message = lang === "en" ? last.message_en || last.message_zh : last.message_zh || last.message_en;
        if (message) item.appendChild(element("span", "verdict-message", message));
        if (last.code) item.appendChild(element("code", "verdict-code", last.code));
        list.appendChild(item);
      }
      card.appendChild(list);
      box.appendChild(card);
    }
  }

  function renderDevices() {
    const rows = $("device-rows");
    rows.replaceChildren();
    const list = devices && Array.isArray(devices.devices) ? devices.devices : [];
    const summary = devices && devices.summary ? devices.summary : null;
    $("devices-summary").textContent = summary ? tf("devicesSummary", summary) : "";
    for (const device of list) {
      const row = element("tr", "device device-" + (device.state === "up" ? "up" : "down"));
      row.appendChild(element("td", "", device.station));
      row.appendChild(element("td", "", device.device));
      row.appendChild(element("td", "", word("deviceKind", device.kind)));
      row.appendChild(element("td", "state", word("deviceState", device.state)));
      row.appendChild(element("td", "", device.since ? when(device.since * 1000) : "—"));
      row.appendChild(element("td", "", [device.detail, device.last_error].filter(Boolean).join(" · ")));
      rows.appendChild(row);
    }
  }

  // -- outbox ------------------------------------------------------------------------------------
  let outbox = null;
  let outboxNote = "";

  async function loadOutbox() {
    try {
      outbox = await api("/api/v1/outbox");
      outboxNote = "";
    } catch (error) {
      outbox = null;
      outboxNote = error instanceof ApiError && error.status === 403 && !error.body.needed_role ? t("outboxNeedAll") : errorText(error);
    }
    renderOutbox();
  }

  function renderOutbox() {
    $("outbox-note").textContent = outboxNote;
    const list = $("outbox");
    list.replaceChildren();
    if (!outbox) return;
    const facts = [
      ["state", t("outboxState"), (t("forwardState")[outbox.state] || outbox.state)],
      ["backlog", t("outboxBacklog"), tf("events", { n: outbox.backlog_events }) + " · " + (Number(outbox.backlog_bytes || 0) / 1024).toFixed(1) + " KiB"],
      ["oldest", t("outboxOldest"), outbox.oldest_age_s === null || outbox.oldest_age_s === undefined ? t("none") : age(outbox.oldest_age_s)],
      ["dead", t("outboxDead"), String(outbox.dead_letters)],
      ["delivered", t("outboxDelivered"), tf("events", { n: outbox.delivered_events })],
      ["upstream", t("outboxUpstream"), outbox.upstream || t("none")],
      ["last-success", t("outboxLastSuccess"), outbox.last_success_at ? when(outbox.last_success_at * 1000) : t("none")],
      ["last-error", t("outboxLastError"), outbox.last_error ? outbox.last_error + (outbox.last_error_at ? " (" + when(outbox.last_error_at * 1000) + ")" : "") : t("none")],
    ];
    for (const [key, name, value] of facts) {
      const term = element("dt", "", name);
      const detail = element("dd", "outbox-" + key, value);
      if (key === "state") detail.classList.add("forward-" + outbox.state);
      if (key === "last-error" && outbox.last_error) detail.classList.add("bad");
      list.appendChild(term);
      list.appendChild(detail);
    }
  }

  // -- anomaly board -----------------------------------------------------------------------------
  let board = { items: [], counts: {}, next: null };
  let boardKind = "";
  let boardNote = "";

  $("ack-by").value = local.get("dashboard.by") || "";
  $("ack-by").addEventListener("change", () => local.set("dashboard.by", $("ack-by").value.trim()));
  $("board-acked").addEventListener("change", () => loadBoard(false));
  $("board-more").addEventListener("click", () => loadBoard(true));

  async function loadBoard(more) {
    const params = new URLSearchParams({ limit: "50" });
    if (boardKind) params.set("kind", boardKind);
    if ($("board-acked").value) params.set("acked", $("board-acked").value);
    if (more && board.next) params.set("cursor", board.next);
    try {
      const page = await api(tenantPath("/anomalies?" + params.toString()));
      board = { items: (more ? board.items : []).concat(page.items || []), counts: page.counts || {}, next: page.next_cursor };
      boardNote = "";
    } catch (error) {
      if (!more) board = { items: [], counts: {}, next: null };
      boardNote = errorText(error);
    }
    renderBoard();
  }

  async function acknowledge(item, button) {
    const by = $("ack-by").value.trim();
    if (!by) {
      boardNote = t("needBy");
      renderBoard();
      $("ack-by").focus();
      return;
    }
    local.set("dashboard.by", by);
    button.disabled = true;
    try {
      const answer = await api(tenantPath("/anomalies/" + encodeURIComponent(item.id) + "/ack"), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ by }),
      });
      item.ack = answer && answer.anomaly ? answer.anomaly.ack : (answer && answer.ack) || { by, at_ms: Date.now() };
      boardNote = "";
    } catch (error) {
      boardNote = errorText(error);
      button.disabled = false;
    }
    renderBoard();
  }

  function renderBoard() {
    const note = $("board-note");
    note.textContent = boardNote;
    note.classList.toggle("bad", Boolean(boardNote));
    const counts = $("board-counts");
    counts.replaceChildren();
    let total = 0;
    for (const kind of KINDS) total += (board.counts[kind] && board.counts[kind].total) || 0;
    const chip = (kind, label, count) => {
      const button = element("button", "chip" + (boardKind === kind ? " chip-on" : "") + (count && count.unacked ? " chip-hot" : ""));
      button.type = "button";
      button.dataset.kind = kind;
      button.appendChild(element("span", "chip-name", label));
      button.appendChild(element("span", "chip-count", count ? (count.unacked !== undefined ? count.unacked + "/" + count.total : count) : "0"));
      button.addEventListener("click", () => { boardKind = kind; loadBoard(false); });
      counts.appendChild(button);
    };
    chip("", t("allKinds"), String(total));
    for (const kind of KINDS) chip(kind, t("kind")[kind] || kind, board.counts[kind]);
    const rows = $("board-rows");
    rows.replaceChildren();
    if (!board.items.length) {
      const row = element("tr", "empty");
      const cell = element("td", "", t("boardEmpty"));
      cell.colSpan = 5;
      row.appendChild(cell);
      rows.appendChild(row);
    }
    for (const item of board.items) {
      const row = element("tr", "anomaly kind-" + item.kind + (item.ack ? " acked" : ""));
      row.dataset.id = item.id;
      row.dataset.kind = item.kind;
      row.appendChild(element("td", "kind", t("kind")[item.kind] || item.kind));
      const orderCell = element("td", "order");
      if (item.order_id) {
        const link = element("a", "order-link", item.order_id);
        link.href = "#lookup-box";
        link.addEventListener("click", (event) => { event.preventDefault(); lookupOrder(item.order_id); });
        orderCell.appendChild(link);
      }
      row.appendChild(orderCell);
      row.appendChild(element("td", "reason", lang === "en" ? item.reason_en || item.reason : item.reason || item.reason_en));
      row.appendChild(element("td", "age", age(item.age_s)));
      const ackCell = element("td", "ack");
      if (item.ack) {
        ackCell.appendChild(element("span", "ack-done", tf("acked", { by: item.ack.by, at: when(item.ack.at_ms) })));
      } else {
        const button = element("button", "control ack-button", t("ack"));
        button.type = "button";
        button.addEventListener("click", () => acknowledge(item, button));
        ackCell.appendChild(button);
      }
      row.appendChild(ackCell);
      rows.appendChild(row);
    }
    $("board-more").hidden = !board.next;
  }

  // -- OCI and its trend chart -------------------------------------------------------------------
  let oci = null;
  let ociNote = "";
  let drill = { part: "", items: [], next: null, total: 0 };

  async function loadOci() {
    try {
      oci = await api(tenantPath("/oci?hours=" + TREND_HOURS));
      ociNote = "";
    } catch (error) {
      oci = null;
      ociNote = errorText(error);
    }
    renderOci();
  }

  async function loadDrill(part, more) {
    const params = new URLSearchParams({ limit: "50" });
    if (more && drill.next) params.set("cursor", drill.next);
    try {
      const page = await api(tenantPath("/oci/" + encodeURIComponent(part) + "/orders?" + params.toString()));
      drill = { part, items: (more ? drill.items : []).concat(page.items || []), next: page.next_cursor, total: page.total };
      ociNote = "";
    } catch (error) {
      ociNote = errorText(error);
    }
    renderOci();
  }

  $("oci-drill-more").addEventListener("click", () => loadDrill(drill.part, true));

  function renderOci() {
    $("oci-note").textContent = ociNote;
    const now = $("oci-now");
    now.replaceChildren();
    $("oci-formula").textContent = oci && oci.formula ? t("formula") + ": " + oci.formula : "";
    if (!oci) { $("oci-chart").replaceChildren(); return; }
    const current = oci.now || {};
    const scoreBox = element("div", "oci-score");
    scoreBox.appendChild(element("div", "oci-name", t("score")));
    scoreBox.appendChild(element("div", "oci-value", percent(current.score)));
    scoreBox.appendChild(element("div", "oci-meta", tf("ociOrders", { n: current.orders || 0, at: when(current.computed_at_ms) })));
    now.appendChild(scoreBox);
    for (const part of PARTS) {
      const button = element("button", "oci-part part-" + part + (drill.part === part ? " chip-on" : ""));
      button.type = "button";
      button.dataset.part = part;
      button.appendChild(element("div", "oci-name", t("part")[part]));
      button.appendChild(element("div", "oci-value", percent(current[part])));
      const offenders = current.offenders ? current.offenders[part] : 0;
      button.appendChild(element("div", "oci-meta", tf("offenders", { n: offenders || 0 })));
      button.addEventListener("click", () => loadDrill(part, false));
      now.appendChild(button);
    }
    renderChart(Array.isArray(oci.trend) ? oci.trend : []);
    const box = $("oci-drill");
    box.hidden = !drill.part;
    if (drill.part) {
      $("oci-drill-title").textContent = tf("drillTitle", { part: t("part")[drill.part] }) + " (" + drill.total + ")";
      const rows = $("oci-drill-rows");
      rows.replaceChildren();
      for (const item of drill.items) {
        const row = element("tr", "drill-row");
        const cell = element("td", "order");
        const link = element("a", "order-link", item.order_id);
        link.href = "#lookup-box";
        link.addEventListener("click", (event) => { event.preventDefault(); lookupOrder(item.order_id); });
        cell.appendChild(link);
        row.appendChild(cell);
        row.appendChild(element("td", "why", describe(item.detail)));
        rows.appendChild(row);
      }
      $("oci-drill-more").hidden = !drill.next;
    }
  }

  function describe(detail) {
    if (!detail || typeof detail !== "object") return detail ? String(detail) : "";
    return Object.entries(detail).map(([k, v]) => k + ": " + (v && typeof v === "object" ? JSON.stringify(v) : v)).join(" · ");
  }

  // A hand-made SVG line chart: no library to vendor or audit, and nothing inline for the CSP.
  const SVG = "http://www.w3.org/2000/svg";
  const SERIES = ["score", "freshness", "consistency", "traceability"];

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function renderChart(points) {
    const box = $("oci-chart");
    box.replaceChildren();
    if (!points.length) {
      box.appendChild(element("p", "help", t("trendEmpty")));
      return;
    }
    const width = 640, height = 240, left = 44, right = 24, top = 14, bottom = 30;
    const hours = points.map((p) => Number(p.hour_ms));
    const first = Math.min(...hours), last = Math.max(...hours);
    const span = Math.max(last - first, 3600000);
    const x = (ms) => left + ((ms - first) / span) * (width - left - right) + (last === first ? (width - left - right) / 2 : 0);
    const y = (value) => top + (1 - value) * (height - top - bottom);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "trend", role: "img", "aria-label": tf("chartLabel", { hours: TREND_HOURS }) });
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "grid-line" }));
      chart.appendChild(svg("text", { x: left - 6, y: y(tick) + 4, class: "axis-label", "text-anchor": "end" }, Math.round(tick * 100) + "%"));
    }
    const labelEvery = Math.max(1, Math.ceil(points.length / 8));
    points.forEach((point, index) => {
      if (index % labelEvery) return;
      const date = new Date(Number(point.hour_ms));
      chart.appendChild(svg("text", { x: x(Number(point.hour_ms)), y: height - 10, class: "axis-label", "text-anchor": "middle" },
        String(date.getHours()).padStart(2, "0") + ":00"));
    });
    for (const series of SERIES) {
      const valued = points.filter((p) => p[series] !== null && p[series] !== undefined);
      if (!valued.length) continue;
      const path = valued.map((p, i) => (i ? "L" : "M") + x(Number(p.hour_ms)).toFixed(1) + " " + y(Number(p[series])).toFixed(1)).join(" ");
      chart.appendChild(svg("path", { d: path, class: "series series-" + series, fill: "none" }));
      for (const p of valued) {
        const dot = svg("circle", { cx: x(Number(p.hour_ms)).toFixed(1), cy: y(Number(p[series])).toFixed(1), r: series === "score" ? 4 : 2.5, class: "point point-" + series });
        dot.dataset.hourMs = String(p.hour_ms);
        dot.appendChild(svg("title", {}, when(p.hour_ms).slice(0, 16) + " " + (series === "score" ? t("score") : t("part")[series]) + " " + percent(p[series])));
        chart.appendChild(dot);
      }
    }
    box.appendChild(chart);
    const legend = element("ul", "legend");
    for (const series of SERIES) {
      const item = element("li", "legend-" + series);
      item.appendChild(element("span", "swatch swatch-" + series));
      item.appendChild(document.createTextNode(series === "score" ? t("score") : t("part")[series]));
      legend.appendChild(item);
    }
    box.appendChild(legend);
  }

  // -- after-sales lookup and packing proof ------------------------------------------------------
  let lookup = null;
  let lookupNote = "";
  let proofUrls = [];

  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runLookup($("lookup-by").value, $("lookup-value").value.trim(), $("lookup-keyword").value.trim());
  });

  function lookupOrder(orderId) {
    $("lookup-by").value = "order_id";
    $("lookup-value").value = orderId;
    runLookup("order_id", orderId, $("lookup-keyword").value.trim());
    $("lookup-box").scrollIntoView();
  }

  function clearLookup() {
    lookup = null;
    lookupNote = "";
    closeProof();
    renderLookup();
  }

  async function runLookup(by, value, keyword) {
    if (!value) return;
    const params = new URLSearchParams({ [by]: value });
    if (keyword) params.set("keyword", keyword);
    lookupNote = t("searching");
    renderLookup();
    try {
      lookup = await api(tenantPath("/buyers/lookup?" + params.toString()));
      lookupNote = "";
    } catch (error) {
      lookup = null;
      lookupNote = errorText(error);
    }
    renderLookup();
  }

  function highlight(text, keyword) {
    const span = element("span", "text");
    const position = keyword ? text.toLowerCase().indexOf(keyword.toLowerCase()) : -1;
    if (position < 0) { span.textContent = text; return span; }
    span.appendChild(document.createTextNode(text.slice(0, position)));
    span.appendChild(element("mark", "", text.slice(position, position + keyword.length)));
    span.appendChild(document.createTextNode(text.slice(position + keyword.length)));
    return span;
  }

  function copyButton(value) {
    const button = element("button", "control copy", t("copy"));
    button.type = "button";
    button.addEventListener("click", () => {
      const done = () => { button.textContent = t("copied"); };
      if (navigator.clipboard) navigator.clipboard.writeText(value).then(done, () => {});
    });
    return button;
  }

  function renderScan(scan) {
    const item = element("li", "scan");
    item.appendChild(element("span", "scan-time", tf("scanAt", { time: when(scan.scanned_at_ms), station: scan.station, operator: scan.operator })));
    if (scan.clip_at_uri) {
      const link = element("a", "clip-link", tf("clipAt", { s: Number(scan.offset_s).toFixed(1) }));
      link.href = scan.clip_at_uri;
      link.title = scan.clip_at_uri;
      link.dataset.offset = String(scan.offset_s);
      item.appendChild(link);
      item.appendChild(element("code", "clip-uri", scan.clip_at_uri));
      item.appendChild(copyButton(scan.clip_at_uri));
    } else {
      item.appendChild(element("span", "clip-pending", t("clipPending")));
    }
    return item;
  }

  function renderOrder(order, keyword) {
    const card = element("article", "order-card");
    card.dataset.orderId = order.order_id;
    const head = element("header", "order-head");
    head.appendChild(element("h3", "order-id", order.order_id));
    head.appendChild(element("span", "order-status status-" + String(order.status || "").toLowerCase(), lang === "en" ? order.status_en : order.status_zh));
    const proof = element("button", "control proof-button", t("proof"));
    proof.type = "button";
    proof.addEventListener("click", () => openProof(order.order_id));
    head.appendChild(proof);
    card.appendChild(head);
    const facts = element("dl", "facts order-facts");
    const waybills = Array.isArray(order.waybills) && order.waybills.length ? order.waybills.join(", ") : t("noWaybill");
    for (const [name, value, key] of [[t("channel"), order.channel, "channel"], [t("waybills"), waybills, "waybills"],
      [t("amount"), order.amounts && order.amounts.amount !== undefined ? order.amounts.amount : "—", "amount"]]) {
      facts.appendChild(element("dt", "", name));
      facts.appendChild(element("dd", "order-" + key, value));
    }
    card.appendChild(facts);
    const list = element("ul", "components");
    for (const component of order.components || []) {
      const item = element("li", "component state-" + component.state + (component.highlight ? " highlight" : ""));
      item.dataset.sku = component.sku;
      const line = element("div", "component-line");
      if (component.kind && component.kind !== "item") line.appendChild(element("span", "badge badge-" + component.kind, word("componentKind", component.kind)));
      const text = lang === "en" ? component.text_en || component.text_zh : component.text_zh || component.text_en;
      line.appendChild(component.highlight ? highlight(String(text || ""), keyword) : element("span", "text", text));
      line.appendChild(element("code", "sku", component.sku));
      item.appendChild(line);
      const scans = element("ul", "scans");
      for (const scan of component.scans || []) scans.appendChild(renderScan(scan));
      if (component.scans && component.scans.length) item.appendChild(scans);
      if (component.snapshot && component.snapshot.sha256) {
        const file = String(component.snapshot.path || "").split("/").pop();
        item.appendChild(element("div", "snapshot", t("snapshot") + ": " + file + " · sha256 " + component.snapshot.sha256.slice(0, 16) + "…"));
      }
      list.appendChild(item);
    }
    card.appendChild(list);
    return card;
  }

  function renderLookup() {
    const note = $("lookup-note");
    const result = $("lookup-result");
    result.replaceChildren();
    let text = lookupNote;
    if (!text && lookup) {
      const notes = lang === "en" ? lookup.notes_en : lookup.notes_zh;
      const days = Math.round((Number(lookup.now_ms) - Number(lookup.since_ms)) / 86400000) || 30;
      text = tf("found", { query: lookup.query, n: (lookup.orders || []).length, days, h: lookup.highlighted || 0 });
      if (Array.isArray(notes) && notes.length) text += " — " + notes.join("；");
    }
    note.textContent = text;
    note.classList.toggle("bad", Boolean(lookupNote) && lookupNote !== t("searching"));
    if (!lookup) return;
    for (const order of lookup.orders || []) result.appendChild(renderOrder(order, lookup.keyword || ""));
  }

  function closeProof() {
    for (const url of proofUrls) URL.revokeObjectURL(url);
    proofUrls = [];
    $("proof").hidden = true;
    $("proof-frame").removeAttribute("src");
    $("proof-open").removeAttribute("href");
    $("proof-png").removeAttribute("href");
    delete $("proof-png").dataset.bytes;
  }

  $("proof-close").addEventListener("click", closeProof);

  async function blobOf(path) {
    const response = await request(path);
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      throw new ApiError(response.status, body);
    }
    return response.blob();
  }

  // The proof page links to its other language by a relative "?lang=": meaningless inside a
  // blob: URL, so that link goes (the dashboard's own switch decides the proof's language).
  function framed(page) {
    const doc = new DOMParser().parseFromString(page, "text/html");
    for (const link of doc.querySelectorAll('a[href^="?lang="]')) (link.closest("p") || link).remove();
    return "<!doctype html>\n" + doc.documentElement.outerHTML;
  }

  async function openProof(orderId) {
    closeProof();
    const base = tenantPath("/orders/" + encodeURIComponent(orderId));
    const suffix = lang === "en" ? "?lang=en" : "";
    $("proof").hidden = false;
    $("proof").dataset.orderId = orderId;
    $("proof-title").textContent = tf("proofTitle", { order: orderId });
    lookupNote = t("proofLoading");
    renderLookupNote();
    try {
      const page = await (await blobOf(base + "/proof.html" + suffix)).text();
      const url = URL.createObjectURL(new Blob([framed(page)], { type: "text/html" }));
      proofUrls.push(url);
      $("proof-frame").src = url;
      $("proof-open").href = url;
      lookupNote = "";
    } catch (error) {
      lookupNote = errorText(error);
    }
    try {
      const png = await blobOf(base + "/proof.png" + suffix);
      const url = URL.createObjectURL(png);
      proofUrls.push(url);
      const link = $("proof-png");
      link.href = url;
      link.download = "proof-" + orderId.replace(/[^A-Za-z0-9_-]+/g, "_") + ".png";
      link.dataset.bytes = String(png.size);
    } catch (error) {
      lookupNote = tf("proofPngMissing", { error: errorText(error) });
    }
    renderLookupNote();
    $("proof").scrollIntoView();
  }

  function renderLookupNote() {
    if (lookupNote) {
      $("lookup-note").textContent = lookupNote;
      $("lookup-note").classList.toggle("bad", lookupNote !== t("proofLoading") && lookupNote !== t("searching"));
    } else {
      renderLookup();
    }
  }

  // -- the whole page ----------------------------------------------------------------------------
  function renderAll() {
    renderStatic();
    renderStations();
    renderDevices();
    renderOutbox();
    renderBoard();
    renderOci();
    renderLookup();
  }

  async function refreshAll() {
    if (!token) return;
    $("tenant-switch").value = tenant;
    await Promise.all([loadStations(), loadOutbox(), loadBoard(false), loadOci()]);
    if (drill.part) await loadDrill(drill.part, false);
    document.body.dataset.loaded = String(Date.now());
  }

  function start() {
    $("sign-in-error").textContent = "";
    showSignedIn(true);
    renderAll();
    refreshAll();
    if (refreshTimer !== null) window.clearInterval(refreshTimer);
    refreshTimer = window.setInterval(() => { if (!document.hidden) refreshAll(); }, REFRESH_S * 1000);
  }

  $("tenant").value = tenant;
  renderAll();
  if (token && tenant) start();
  else showSignedIn(false);
})();
