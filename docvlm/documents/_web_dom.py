"""The script that reads a rendered page's DOM: words with their boxes, links, form fields and tables.

It runs in an isolated JavaScript world (the page's own scripts cannot patch what it calls) after the page's
scripts were stopped, and returns plain JSON. Boxes are CSS pixels of the whole page (document coordinates).
"""

from __future__ import annotations

__all__ = ["EAGER_SCRIPT", "EXTRACT_SCRIPT"]

#: Turn lazy images and frames eager, so that the page's final layout is known before it is read.
EAGER_SCRIPT = """
(() => {
  let n = 0;
  for (const el of document.querySelectorAll('img[loading="lazy"], iframe[loading="lazy"]')) {
    el.loading = 'eager'; n++;
  }
  return n;
})()
"""

EXTRACT_SCRIPT = r"""
(() => {
  const doc = document;
  const root = doc.documentElement;
  const sx = window.scrollX, sy = window.scrollY;
  const width = Math.max(root.scrollWidth, doc.body ? doc.body.scrollWidth : 0, window.innerWidth);
  const height = Math.max(root.scrollHeight, doc.body ? doc.body.scrollHeight : 0, window.innerHeight);
  const r4 = v => Math.round(v * 1000) / 1000;
  const box = r => [r4(r.left + sx), r4(r.top + sy), r4(r.right + sx), r4(r.bottom + sy)];

  // the region an element's content is visible in: ancestors that clip their overflow cut it down
  const clips = new Map();
  const clipOf = el => {
    if (!el || el === root || el === doc.body) return null;
    if (clips.has(el)) return clips.get(el);
    let clip = clipOf(el.parentElement);
    const cs = getComputedStyle(el);
    if (cs.position === 'fixed') clip = null;
    if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible' || cs.clipPath !== 'none' ||
        (cs.clip && cs.clip !== 'auto')) {
      const b = box(el.getBoundingClientRect());
      clip = clip ? [Math.max(clip[0], b[0]), Math.max(clip[1], b[1]), Math.min(clip[2], b[2]), Math.min(clip[3], b[3])] : b;
    }
    clips.set(el, clip);
    return clip;
  };
  const shown = (b, clip) => {
    const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
    if (b[2] - b[0] <= 0 || b[3] - b[1] <= 0) return false;
    if (cx < 0 || cy < 0 || cx > width || cy > height) return false;
    return !clip || (clip[0] <= cx && cx <= clip[2] && clip[1] <= cy && cy <= clip[3]);
  };
  const visible = el => el.checkVisibility({opacityProperty: true, visibilityProperty: true, contentVisibilityAuto: true});

  // blocks: the nearest ancestor that is not laid out inline
  const blocks = new Map();
  const blockOf = el => {
    let e = el;
    while (e && e !== root) {
      const d = getComputedStyle(e).display;
      if (!d.startsWith('inline') && d !== 'contents') break;
      e = e.parentElement;
    }
    if (!blocks.has(e)) blocks.set(e, blocks.size);
    return blocks.get(e);
  };

  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'OPTION', 'SELECT', 'TITLE']);
  const words = [];
  const range = doc.createRange();
  const walker = doc.createTreeWalker(doc.body || root, NodeFilter.SHOW_TEXT);
  const visibleCache = new Map();
  let glue = null;  // the last word, while it ends flush with the end of its text node
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || skip.has(parent.tagName)) { glue = null; continue; }
    let ok = visibleCache.get(parent);
    if (ok === undefined) { ok = visible(parent); visibleCache.set(parent, ok); }
    if (!ok) { glue = null; continue; }
    if (/^\s/.test(node.data)) glue = null;
    const text = node.data;
    const re = /\S+/g;
    let m, block = -1, clip;
    while ((m = re.exec(text))) {
      if (block < 0) { block = blockOf(parent); clip = clipOf(parent); }
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const rects = Array.from(range.getClientRects()).filter(r => r.width > 0 && r.height > 0);
      const flush = m.index + m[0].length === text.length;
      if (rects.length === 0) { glue = null; continue; }
      if (rects.length === 1) {
        const b = box(rects[0]);
        if (!shown(b, clip)) { glue = null; continue; }
        // "<b>bold</b>, next": no space between two text nodes, so one word, as a reader sees it
        if (m.index === 0 && glue && glue[5] === block && Math.abs(glue[1] - b[1]) < 0.5 * (b[3] - b[1]) &&
            b[0] >= glue[2] - 0.5 && b[0] - glue[2] < 1.5) {
          glue[2] = b[2]; glue[1] = Math.min(glue[1], b[1]); glue[3] = Math.max(glue[3], b[3]); glue[4] += m[0];
        } else {
          words.push([...b, m[0], block]);
          glue = words[words.length - 1];
        }
        if (!flush) glue = null;
        continue;
      }
      glue = null;
      // a word broken across lines: one piece per line, grouped character by character
      let piece = null;
      for (let i = 0; i < m[0].length; i++) {
        range.setStart(node, m.index + i);
        range.setEnd(node, m.index + i + 1);
        const cr = Array.from(range.getClientRects()).find(r => r.width > 0 && r.height > 0);
        if (!cr) continue;
        const b = box(cr);
        if (piece && Math.abs(b[1] - piece[1]) < 0.5 * (piece[3] - piece[1]) && b[0] >= piece[0]) {
          piece[2] = Math.max(piece[2], b[2]); piece[3] = Math.max(piece[3], b[3]); piece[4] += m[0][i];
        } else {
          if (piece && shown(piece, clip)) words.push(piece);
          piece = [...b, m[0][i], block];
        }
      }
      if (piece && shown(piece, clip)) words.push(piece);
    }
  }

  const unionBox = el => {
    const rs = Array.from(el.getClientRects()).filter(r => r.width > 0 && r.height > 0);
    if (rs.length === 0) return null;
    const bs = rs.map(box);
    return [Math.min(...bs.map(b => b[0])), Math.min(...bs.map(b => b[1])),
            Math.max(...bs.map(b => b[2])), Math.max(...bs.map(b => b[3]))];
  };
  const clean = s => (s || '').replace(/\s+/g, ' ').trim();

  const links = [];
  for (const a of doc.querySelectorAll('a[href], area[href]')) {
    if (!visible(a)) continue;
    const b = unionBox(a);
    if (!b || !shown(b, clipOf(a))) continue;
    links.push({href: a.href, text: clean(a.innerText || a.getAttribute('aria-label') || a.title || a.alt), box: b});
  }

  const fields = [];
  for (const el of doc.querySelectorAll('input, select, textarea, button')) {
    const type = (el.tagName === 'INPUT' ? (el.getAttribute('type') || 'text') : el.tagName).toLowerCase();
    if (type === 'hidden' || !visible(el)) continue;
    const b = unionBox(el);
    if (!b || !shown(b, clipOf(el))) continue;
    let label = el.labels && el.labels.length ? clean(el.labels[0].innerText) : '';
    if (!label) label = clean(el.getAttribute('aria-label') || el.getAttribute('placeholder') || el.title);
    if (!label && el.tagName === 'BUTTON') label = clean(el.innerText);
    let value = null;
    if (type === 'select') value = Array.from(el.selectedOptions).map(o => clean(o.text)).join(', ');
    else if (type !== 'password' && type !== 'file') value = el.value;
    fields.push({
      kind: type, name: el.getAttribute('name') || el.id || null, label: label || null, value,
      checked: (type === 'checkbox' || type === 'radio') ? el.checked : null,
      options: type === 'select' ? Array.from(el.options).map(o => clean(o.text)) : [],
      required: !!el.required, disabled: !!el.disabled, box: b,
    });
  }

  const tables = [];
  for (const t of doc.querySelectorAll('table')) {
    if (!visible(t)) continue;
    const b = unionBox(t);
    if (!b || !shown(b, clipOf(t))) continue;
    const rows = [];
    for (const tr of t.rows) {
      const cells = [];
      for (const c of tr.cells) {
        cells.push({text: clean(c.innerText), row_span: c.rowSpan, col_span: c.colSpan,
                    header: c.tagName === 'TH', box: unionBox(c)});
      }
      rows.push(cells);
    }
    tables.push({box: b, caption: t.caption ? clean(t.caption.innerText) : null, rows});
  }

  return {url: location.href, title: doc.title, width, height, words, links, fields, tables};
})()
"""
