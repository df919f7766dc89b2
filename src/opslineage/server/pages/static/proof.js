// The remediation page's proof badge: this browser checks, with WebCrypto, that the action's event
// is in the log (RFC 9162 inclusion proof, from a leaf hash it computes itself) and that the
// checkpoint the proof leads to is signed by the log key the page names (C2SP signed note, Ed25519).
"use strict";

const LEAF_TAG = new TextEncoder().encode("opslineage-leaf/2\n");
const DASH = "\u2014";

class Failure extends Error {} // what was proved does not hold
class Unable extends Error {} // nothing could be proved here

function bytesOf(base64) {
  const text = atob(base64);
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function joined(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

function same(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined(...parts)));
}

async function getJson(path) {
  let answer;
  try {
    answer = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (error) {
    throw new Unable(`${path} did not answer (${error.message})`);
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    throw new Unable(`${path} answered ${answer.status}: ${body.detail || body.error || "no detail"}`);
  }
  return body;
}

// The signed note's text, its origin, size and root, and the signature line by `name` (C2SP signed-note).
function parsedNote(note, name) {
  const end = note.lastIndexOf("\n\n");
  if (end < 0) throw new Failure("the checkpoint is not a signed note (no blank line before its signatures)");
  const text = note.slice(0, end + 1);
  const lines = text.split("\n");
  if (lines.length < 5 || !lines[3].startsWith("time ")) throw new Failure("the checkpoint note is malformed");
  const line = note.slice(end + 2).split("\n").find((l) => l.startsWith(`${DASH} ${name} `));
  if (line === undefined) throw new Failure(`the checkpoint has no signature by ${name}`);
  return {
    text: new TextEncoder().encode(text),
    origin: lines[0],
    size: Number(lines[1]),
    root: bytesOf(lines[2]),
    signature: bytesOf(line.split(" ")[2]),
  };
}

async function checkSignature(note, name, publicKey) {
  const keyId = (await sha256(new TextEncoder().encode(name), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
  if (!same(note.signature.slice(0, 4), keyId)) {
    throw new Failure(`the checkpoint is signed by key id ${hexOf(note.signature.slice(0, 4))}, not ${hexOf(keyId)}`);
  }
  let key;
  try {
    key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    throw new Unable(`this browser's WebCrypto has no Ed25519 (${error.name})`);
  }
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, key, note.signature.slice(4), note.text);
  if (!valid) throw new Failure("the checkpoint's Ed25519 signature does not verify with the page's log key");
  return hexOf(keyId);
}

// The leaf hash of the action's event, from bytes this browser checks name the action.
async function leafHash(leaf, badge) {
  const data = bytesOf(leaf.data);
  if (!same(data.slice(0, LEAF_TAG.length), LEAF_TAG)) throw new Failure("the leaf does not start with opslineage-leaf/2");
  const body = JSON.parse(new TextDecoder().decode(data.slice(LEAF_TAG.length + 32)));
  const run = badge.dataset.actionRun.replace(/^run:/, "");
  if (!body.run || body.run.runId !== run) throw new Failure(`the leaf is an event of run ${body.run && body.run.runId}, not ${run}`);
  const recorded = (body.outputs || []).map((o) => o.facets && o.facets.aiops_action && o.facets.aiops_action._content);
  if (!recorded.includes(badge.dataset.actionDigest)) throw new Failure("the leaf does not record this action's digest");
  return sha256(Uint8Array.of(0x00), data);
}

// RFC 9162 §2.1.3.2: the root an inclusion path leads to from `hash`.
async function rootOf(hash, index, size, path) {
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const hex of path) {
    const p = Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
    if (sn === 0) throw new Failure("the inclusion proof is longer than its path");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(0x01), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(Uint8Array.of(0x01), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Failure("the inclusion proof is shorter than its path");
  return r;
}

async function check(badge) {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    throw new Unable(
      "this page is not a secure context (plain HTTP on a host other than localhost), so the browser offers no WebCrypto",
    );
  }
  const seq = Number(badge.dataset.seq);
  const name = badge.dataset.keyName;
  const signed = await getJson("/api/v1/log/checkpoint");
  const note = parsedNote(signed.note, name);
  if (note.origin !== name) throw new Failure(`the checkpoint is of log ${note.origin}, not ${name}`);
  const keyId = await checkSignature(note, name, bytesOf(badge.dataset.publicKey));
  if (note.size < seq) throw new Unable(`the newest checkpoint (size ${note.size}) does not cover event ${seq} yet`);
  const hash = await leafHash(await getJson(`/api/v1/log/leaf?seq=${seq}`), badge);
  const proof = await getJson(`/api/v1/log/proof/inclusion?seq=${seq}&tree_size=${note.size}`);
  if (proof.leaf_index !== seq - 1 || proof.tree_size !== note.size) {
    throw new Failure(`the proof is of leaf ${proof.leaf_index} in a tree of ${proof.tree_size}, not ${seq - 1} in ${note.size}`);
  }
  if (!same(await rootOf(hash, seq - 1, note.size, proof.audit_path), note.root)) {
    throw new Failure("the inclusion proof does not lead from this action's leaf to the checkpoint's root");
  }
  return `verified in this browser against checkpoint ${note.size} signed by ${name} (key id ${keyId})`;
}

function show(badge, state, text) {
  badge.className = `badge ${state}`;
  badge.dataset.state = state;
  badge.querySelector(".verdict").textContent = text;
}

document.addEventListener("DOMContentLoaded", () => {
  const badge = document.getElementById("proof-badge");
  if (badge === null) return;
  show(badge, "pending", "Checking the proof in this browser…");
  check(badge).then(
    (text) => show(badge, "verified", text),
    (error) => {
      if (error instanceof Unable) {
        show(badge, "unable", `cannot check here: ${error.message}; use opslineage proof or verify-bundle`);
      } else {
        show(badge, "failed", `failed: ${error.message}`);
      }
    },
  );
});
