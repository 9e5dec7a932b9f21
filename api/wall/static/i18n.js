// Texts of the wall page: Chinese first, English second. t("key") in the current language.

const TEXTS = {
  zh: {
    title: "雪亮工程 · 实时视频墙",
    login: "登录",
    logout: "退出",
    username: "用户名",
    password: "密码",
    login_failed: "登录失败：用户名或密码错误",
    need_operator: "需要值班员（operator）或管理员角色才能查看视频墙",
    session_expired: "登录已过期，请重新登录",
    layout: "分屏",
    fullscreen: "全屏",
    close_tile: "关闭画面",
    search: "搜索摄像机、乡镇、网格…",
    cameras: "摄像机",
    no_match: "没有匹配的摄像机",
    matches: "匹配 {n} 个",
    alarms: "告警",
    no_alarms: "暂无告警",
    ack: "确认",
    dismiss: "误报",
    dismiss_reason: "误报原因",
    confirm: "确定",
    cancel: "取消",
    escalate: "升级为案件",
    jump: "查看画面",
    saved_walls: "已保存的墙",
    tours: "巡视",
    save_wall: "保存",
    delete: "删除",
    wall_name: "名称",
    choose: "— 选择 —",
    tour_this: "巡视此区域",
    tour_interval: "间隔(秒)",
    tour_running: "巡视中：{name}，第 {page}/{pages} 组",
    tour_paused: "巡视已暂停：{name}",
    pause: "暂停",
    resume: "继续",
    stop: "停止",
    save_tour: "保存巡视",
    ptz: "云台",
    presets: "预置位",
    speed: "速度",
    zoom_in: "放大",
    zoom_out: "缩小",
    connecting: "连接中",
    playing: "播放中",
    reconnecting: "重连中",
    no_stream: "无视频流",
    failed: "失败",
    drop_here: "拖放摄像机到此处",
    status_online: "在线",
    status_offline: "离线",
    status_degraded: "异常",
    status_auth_failed: "认证失败",
    status_provisioning: "接入中",
    status_unsupported: "不支持",
    grade_blue: "蓝色预警",
    grade_orange: "橙色预警",
    grade_red: "红色预警",
    state_open: "待处理",
    state_acknowledged: "已确认",
    state_dismissed: "已排除",
    state_escalated: "已升级",
    state_closed: "已结束",
    unknown_district: "未分区",
    unknown_township: "未知乡镇",
    unknown_grid: "未知网格",
    saved_ok: "已保存",
    save_failed: "保存失败",
    offline_copy: "服务器不可用，使用本机副本",
    error_of: "{what}：{detail}",
    feed_down: "实时推送已中断，正在重连",
    lang: "English",
    rule_intrusion: "区域入侵",
    rule_crowd: "人员聚集",
    rule_loitering: "人员徘徊",
    rule_parking: "违规停车",
    rule_camera: "摄像机故障",
    rule_quality: "视频质量异常",
    rule_sensor: "传感器告警",
  },
  en: {
    title: "Xueliang · Live wall",
    login: "Log in",
    logout: "Log out",
    username: "User name",
    password: "Password",
    login_failed: "Login failed: wrong user name or password",
    need_operator: "The wall needs the operator or admin role",
    session_expired: "Session expired, please log in again",
    layout: "Layout",
    fullscreen: "Full screen",
    close_tile: "Close",
    search: "Search cameras, townships, grids…",
    cameras: "Cameras",
    no_match: "No camera matches",
    matches: "{n} matches",
    alarms: "Alarms",
    no_alarms: "No alarms",
    ack: "Acknowledge",
    dismiss: "Dismiss",
    dismiss_reason: "Reason",
    confirm: "OK",
    cancel: "Cancel",
    escalate: "Escalate to case",
    jump: "Show camera",
    saved_walls: "Saved walls",
    tours: "Tours",
    save_wall: "Save",
    delete: "Delete",
    wall_name: "Name",
    choose: "— choose —",
    tour_this: "Tour this area",
    tour_interval: "Every (s)",
    tour_running: "Tour {name}: group {page}/{pages}",
    tour_paused: "Tour paused: {name}",
    pause: "Pause",
    resume: "Resume",
    stop: "Stop",
    save_tour: "Save tour",
    ptz: "PTZ",
    presets: "Presets",
    speed: "Speed",
    zoom_in: "Zoom in",
    zoom_out: "Zoom out",
    connecting: "Connecting",
    playing: "Playing",
    reconnecting: "Reconnecting",
    no_stream: "No stream",
    failed: "Failed",
    drop_here: "Drop a camera here",
    status_online: "online",
    status_offline: "offline",
    status_degraded: "degraded",
    status_auth_failed: "auth failed",
    status_provisioning: "provisioning",
    status_unsupported: "unsupported",
    grade_blue: "Blue",
    grade_orange: "Orange",
    grade_red: "Red",
    state_open: "Open",
    state_acknowledged: "Acknowledged",
    state_dismissed: "Dismissed",
    state_escalated: "Escalated",
    state_closed: "Closed",
    unknown_district: "No district",
    unknown_township: "No township",
    unknown_grid: "No grid",
    saved_ok: "Saved",
    save_failed: "Save failed",
    offline_copy: "Server unavailable: using this browser's copy",
    error_of: "{what}: {detail}",
    feed_down: "Live feed interrupted, reconnecting",
    lang: "中文",
    rule_intrusion: "Intrusion",
    rule_crowd: "Crowd gathering",
    rule_loitering: "Loitering",
    rule_parking: "Illegal parking",
    rule_camera: "Camera fault",
    rule_quality: "Video quality",
    rule_sensor: "Sensor alarm",
  },
};

let current = localStorage.getItem("xl.wall.lang") === "en" ? "en" : "zh";

export function lang() {
  return current;
}

export function t(key, values = {}) {
  const text = TEXTS[current][key] ?? TEXTS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// A rule name ("crowd", "quality.blur") in words: the rule, else its family, else as is.
export function ruleName(rule) {
  const family = String(rule || "").split(".")[0];
  for (const key of [`rule_${rule}`, `rule_${family}`]) if (TEXTS[current][key]) return TEXTS[current][key];
  return rule || "";
}

export function toggleLang() {
  current = current === "zh" ? "en" : "zh";
  localStorage.setItem("xl.wall.lang", current);
  applyTexts(document);
}

// Elements carry data-i18n="key" (text) or data-i18n-placeholder / data-i18n-title.
export function applyTexts(root) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  document.title = t("title");
}
