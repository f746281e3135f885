#!/usr/bin/env node
// Compiles the official OCPP 2.0.1 JSON schemas (draft-07, as shipped by the
// npm package ocpp-rpc) into static C++ tables for src/ocpp/schema.cpp.
//
// Usage: node tools/schema-gen/generate.js [schemas.json] [out_dir]
//   schemas.json  default: tools/dev-csms/node_modules/ocpp-rpc/lib/schemas/ocpp2_0_1.json
//   out_dir       default: src/ocpp/generated
// Writes out_dir/schema_tables.hpp and out_dir/schema_tables.cpp.
//
// The output is a pure function of the input file: no timestamps, no absolute
// paths, stable ordering. CI regenerates it and runs `git diff --exit-code`.
//
// Table model (see the generated header for the C++ side):
//  - every schema node (after $ref resolution) becomes one entry of kNodes;
//    structurally identical nodes are shared (hash-consing), across schemas too;
//  - object nodes own a contiguous range of kProperties (schema order),
//    string nodes with "enum" own a contiguous range of kEnumValues;
//  - all names and enum values live in one char pool (kStringPool) and are
//    referenced by (offset, length), so the tables contain no pointers and need
//    no relocations: they end up in .rodata even in a PIE;
//  - kActions is sorted by name and maps an action to its request and response
//    root node.
// Anything the tables cannot express (pattern, oneOf, tuple items, recursive
// definitions, ...) aborts the generator instead of being silently ignored.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_SCHEMAS = path.join(REPO_ROOT, 'tools', 'dev-csms', 'node_modules', 'ocpp-rpc', 'lib',
                                  'schemas', 'ocpp2_0_1.json');
const DEFAULT_OUT_DIR = path.join(REPO_ROOT, 'src', 'ocpp', 'generated');

const NO_NODE = 0xffff;
const UNBOUNDED = 0xffffffff;
const MAX_SAFE_LIMIT = 2 ** 53;  // minimum/maximum are compared as doubles

const KINDS = ['Object', 'Array', 'String', 'Integer', 'Number', 'Boolean', 'Any'];
const TYPE_TO_KIND = {
  object: 'Object',
  array: 'Array',
  string: 'String',
  integer: 'Integer',
  number: 'Number',
  boolean: 'Boolean',
};
const FLAG_ADDITIONAL_PROPERTIES = 1;
const FLAG_DATE_TIME = 2;
const FLAG_HAS_MINIMUM = 4;
const FLAG_HAS_MAXIMUM = 8;

// Keywords the generator understands. "description" and "default" carry no
// validation semantics; "$schema"/"$id" are only meaningful on the root.
const KNOWN_KEYWORDS = new Set([
  '$schema', '$id', 'description', 'default', 'definitions', 'type', 'properties', 'required',
  'additionalProperties', 'enum', 'maxLength', 'minLength', 'minItems', 'maxItems', 'items',
  'additionalItems', 'format', 'minimum', 'maximum', '$ref',
]);

function fail(where, msg) {
  throw new Error(`${where}: ${msg}`);
}

function toPosix(p) {
  return p.split(path.sep).join('/');
}

function isNonNegInt(x) {
  return Number.isInteger(x) && x >= 0 && x < UNBOUNDED;
}

class Tables {
  constructor() {
    // {kind, flags, minLength, maxLength, minItems, maxItems, items, minimum, maximum, first, count, origin}
    this.nodes = [];
    this.nodeIndex = new Map();  // canonical key -> node index
    this.properties = [];  // {name, node, required}
    this.enumValues = [];  // string
    this.strings = new Set();
  }

  intern(n, props, enumValues, origin) {
    const key = JSON.stringify([n.kind, n.flags, n.minLength, n.maxLength, n.minItems, n.maxItems,
                                n.items, n.minimum, n.maximum, props.map((p) => [p.name, p.node, p.required]),
                                enumValues]);
    const found = this.nodeIndex.get(key);
    if (found !== undefined) return found;
    const node = {...n, first: 0, count: 0, origin};
    if (props.length > 0) {
      node.first = this.properties.length;
      node.count = props.length;
      for (const p of props) {
        this.properties.push(p);
        this.strings.add(p.name);
      }
    } else if (enumValues.length > 0) {
      node.first = this.enumValues.length;
      node.count = enumValues.length;
      for (const e of enumValues) {
        this.enumValues.push(e);
        this.strings.add(e);
      }
    }
    const index = this.nodes.length;
    if (index >= NO_NODE) fail(origin, 'too many nodes for 16-bit indices');
    if (this.properties.length > 0xffff || this.enumValues.length > 0xffff) {
      fail(origin, 'too many properties/enum values for 16-bit indices');
    }
    this.nodes.push(node);
    this.nodeIndex.set(key, index);
    return index;
  }
}

// Compiles one schema (one $id) into the shared tables; returns the root node.
function compileSchema(tables, schema, rootName) {
  const id = schema.$id;
  const definitions = schema.definitions || {};
  const defState = new Map();  // name -> 'busy' | node index

  function resolveRef(ref, where) {
    const m = /^#\/definitions\/([^/]+)$/.exec(ref);
    if (!m) fail(where, `unsupported $ref ${JSON.stringify(ref)}`);
    const name = m[1];
    if (!Object.prototype.hasOwnProperty.call(definitions, name)) fail(where, `dangling $ref ${ref}`);
    const state = defState.get(name);
    if (state === 'busy') fail(where, `recursive definition ${name} is not supported`);
    if (state !== undefined) return state;
    defState.set(name, 'busy');
    const index = compileNode(definitions[name], `${id}#/definitions/${name}`, name);
    defState.set(name, index);
    return index;
  }

  function compileNode(s, where, origin) {
    if (s === null || typeof s !== 'object' || Array.isArray(s)) fail(where, 'schema is not an object');
    for (const k of Object.keys(s)) {
      if (!KNOWN_KEYWORDS.has(k)) fail(where, `unsupported keyword ${JSON.stringify(k)}`);
    }
    if (s.$ref !== undefined) {
      const others = Object.keys(s).filter((k) => k !== '$ref' && k !== 'description');
      if (others.length > 0) fail(where, `$ref with sibling keywords ${others.join(',')}`);
      return resolveRef(s.$ref, where);
    }

    let kind = 'Any';
    if (s.type !== undefined) {
      if (typeof s.type !== 'string' || !(s.type in TYPE_TO_KIND)) {
        fail(where, `unsupported type ${JSON.stringify(s.type)}`);
      }
      kind = TYPE_TO_KIND[s.type];
    }
    const n = {
      kind,
      flags: 0,
      minLength: 0,
      maxLength: UNBOUNDED,
      minItems: 0,
      maxItems: UNBOUNDED,
      items: NO_NODE,
      minimum: 0,
      maximum: 0,
    };
    const expectKind = (keyword, ...kinds) => {
      if (s[keyword] !== undefined && !kinds.includes(kind)) fail(where, `${keyword} on a ${kind} node`);
    };
    expectKind('properties', 'Object');
    expectKind('required', 'Object');
    expectKind('additionalProperties', 'Object');
    expectKind('enum', 'String');
    expectKind('maxLength', 'String');
    expectKind('minLength', 'String');
    expectKind('format', 'String');
    expectKind('items', 'Array');
    expectKind('additionalItems', 'Array');
    expectKind('minItems', 'Array');
    expectKind('maxItems', 'Array');
    expectKind('minimum', 'Integer', 'Number');
    expectKind('maximum', 'Integer', 'Number');

    const props = [];
    let enumValues = [];

    if (kind === 'Object') {
      const ap = s.additionalProperties === undefined ? true : s.additionalProperties;
      if (typeof ap !== 'boolean') fail(where, 'additionalProperties must be a boolean');
      if (ap) n.flags |= FLAG_ADDITIONAL_PROPERTIES;
      const required = s.required || [];
      if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) {
        fail(where, 'required must be an array of strings');
      }
      const requiredSet = new Set(required);
      const properties = s.properties || {};
      for (const [name, sub] of Object.entries(properties)) {
        props.push({name, node: compileNode(sub, `${where}/properties/${name}`, `${origin}.${name}`),
                    required: requiredSet.has(name)});
      }
      // A required name without a property schema may hold any value.
      for (const name of required) {
        if (!Object.prototype.hasOwnProperty.call(properties, name)) {
          props.push({name, node: compileNode({}, `${where}/required/${name}`, `${origin}.${name}`),
                      required: true});
        }
      }
    }
    if (kind === 'String') {
      if (s.enum !== undefined) {
        if (!Array.isArray(s.enum) || s.enum.length === 0 || s.enum.some((e) => typeof e !== 'string')) {
          fail(where, 'enum must be a non-empty array of strings');
        }
        enumValues = [...new Set(s.enum)];
      }
      if (s.maxLength !== undefined) {
        if (!isNonNegInt(s.maxLength)) fail(where, 'bad maxLength');
        n.maxLength = s.maxLength;
      }
      if (s.minLength !== undefined) {
        if (!isNonNegInt(s.minLength)) fail(where, 'bad minLength');
        n.minLength = s.minLength;
      }
      if (s.format !== undefined) {
        if (s.format !== 'date-time') fail(where, `unsupported format ${JSON.stringify(s.format)}`);
        n.flags |= FLAG_DATE_TIME;
      }
    }
    if (kind === 'Array') {
      if (s.items === undefined) {
        n.items = compileNode({}, `${where}/items`, `${origin}[]`);
      } else {
        if (Array.isArray(s.items)) fail(where, 'tuple-form items is not supported');
        n.items = compileNode(s.items, `${where}/items`, `${origin}[]`);
      }
      // additionalItems only applies to tuple-form items; with a single items
      // schema (the only form accepted above) it has no effect in draft-07.
      if (s.additionalItems !== undefined && typeof s.additionalItems !== 'boolean') {
        fail(where, 'additionalItems must be a boolean');
      }
      if (s.minItems !== undefined) {
        if (!isNonNegInt(s.minItems)) fail(where, 'bad minItems');
        n.minItems = s.minItems;
      }
      if (s.maxItems !== undefined) {
        if (!isNonNegInt(s.maxItems)) fail(where, 'bad maxItems');
        n.maxItems = s.maxItems;
      }
    }
    if (kind === 'Integer' || kind === 'Number') {
      for (const [keyword, flag, field] of [['minimum', FLAG_HAS_MINIMUM, 'minimum'],
                                            ['maximum', FLAG_HAS_MAXIMUM, 'maximum']]) {
        if (s[keyword] === undefined) continue;
        const v = s[keyword];
        if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_SAFE_LIMIT) {
          fail(where, `bad ${keyword}`);
        }
        n.flags |= flag;
        n[field] = v;
      }
    }
    return tables.intern(n, props, enumValues, origin);
  }

  if (schema.type !== 'object') fail(id, 'root schema is not an object schema');
  return compileNode(schema, id, rootName);
}

function parseId(id) {
  const m = /^urn:([A-Za-z0-9]+)\.(req|conf)$/.exec(id || '');
  if (!m) fail(String(id), 'unexpected $id (want urn:<Action>.req|conf)');
  return {action: m[1], kind: m[2] === 'req' ? 'request' : 'response'};
}

function compile(schemas) {
  if (!Array.isArray(schemas)) fail('input', 'expected a JSON array of schemas');
  const byAction = new Map();
  for (const schema of schemas) {
    const {action, kind} = parseId(schema.$id);
    const entry = byAction.get(action) || {};
    if (entry[kind]) fail(schema.$id, 'duplicate $id');
    entry[kind] = schema;
    byAction.set(action, entry);
  }
  const names = [...byAction.keys()].sort(byteCompare);
  const tables = new Tables();
  const actions = [];
  for (const name of names) {
    const entry = byAction.get(name);
    if (!entry.request || !entry.response) fail(name, 'action lacks a request or a response schema');
    const request = compileSchema(tables, entry.request, `${name}Request`);
    const response = compileSchema(tables, entry.response, `${name}Response`);
    tables.strings.add(name);
    actions.push({name, request, response});
  }
  return {tables, actions};
}

function byteCompare(a, b) {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

// ---------------------------------------------------------------- emitting

function cxxString(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else fail(JSON.stringify(s), 'non-printable or non-ASCII name/enum value is not supported');
  }
  return `${out}"`;
}

function cxxDouble(v) {
  // Limits are integral in practice; keep a form that reads back exactly.
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

function hex(v, width) {
  return `0x${v.toString(16).toUpperCase().padStart(width, '0')}`;
}

function emit(compiled, sourceLabel, sourceSha256) {
  const {tables, actions} = compiled;

  // String pool: unique strings, byte-sorted, concatenated without separators.
  const strings = [...tables.strings].sort(byteCompare);
  const offsets = new Map();
  let pool = 0;
  for (const s of strings) {
    offsets.set(s, pool);
    pool += Buffer.byteLength(s, 'utf8');
  }
  // -Wpedantic (-Woverlength-strings) rejects string literals past 65535 chars.
  if (pool + 1 > 65535) fail('string pool', `too large (${pool} bytes) for a single string literal`);
  const ref = (s) => `{${offsets.get(s)}, ${Buffer.byteLength(s, 'utf8')}}`;

  const banner = [
    '// GENERATED FILE - DO NOT EDIT.',
    '// Generated by tools/schema-gen/generate.js from the OCPP 2.0.1 JSON schemas',
    `// ${sourceLabel}`,
    `// (sha256 ${sourceSha256}).`,
    '// Regenerate: node tools/schema-gen/generate.js',
  ].join('\n');

  const counts = {
    kStringPoolSize: pool,
    kNodeCount: tables.nodes.length,
    kPropertyCount: tables.properties.length,
    kEnumValueCount: tables.enumValues.length,
    kActionCount: actions.length,
  };

  const hpp = `${banner}
//
// Internal to src/ocpp/schema.cpp: compiled OCPP 2.0.1 schemas as constant,
// pointer-free tables (everything lives in .rodata).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cg::ocpp::schema::tables {

enum class NodeKind : std::uint8_t { ${KINDS.join(', ')} };

// Node::flags bits.
inline constexpr std::uint8_t kAdditionalProperties = ${hex(FLAG_ADDITIONAL_PROPERTIES, 2)};  // Object: unknown members allowed
inline constexpr std::uint8_t kDateTime = ${hex(FLAG_DATE_TIME, 2)};              // String: "format": "date-time" (RFC 3339)
inline constexpr std::uint8_t kHasMinimum = ${hex(FLAG_HAS_MINIMUM, 2)};            // Integer/Number: Node::minimum applies
inline constexpr std::uint8_t kHasMaximum = ${hex(FLAG_HAS_MAXIMUM, 2)};            // Integer/Number: Node::maximum applies

inline constexpr std::uint16_t kNoNode = ${hex(NO_NODE, 4)};
inline constexpr std::uint32_t kUnbounded = ${hex(UNBOUNDED, 8)};

// A string in kStringPool (not NUL-terminated).
struct StrRef {
  std::uint32_t offset;
  std::uint32_t length;
};

struct Node {
  double minimum;            // if flags & kHasMinimum (inclusive)
  double maximum;            // if flags & kHasMaximum (inclusive)
  std::uint32_t min_length;  // String, in Unicode code points
  std::uint32_t max_length;  // String, in Unicode code points; kUnbounded if none
  std::uint32_t min_items;   // Array
  std::uint32_t max_items;   // Array; kUnbounded if none
  std::uint16_t first;       // Object: first kProperties index; String: first kEnumValues index
  std::uint16_t count;       // Object: property count; String: enum value count (0 = no enum)
  std::uint16_t items;       // Array: element node; kNoNode otherwise
  NodeKind kind;
  std::uint8_t flags;
};

struct Property {
  StrRef name;
  std::uint16_t node;
  bool required;
};

struct Action {
  StrRef name;
  std::uint16_t request;   // root node of <name>Request
  std::uint16_t response;  // root node of <name>Response
};

${Object.entries(counts).map(([k, v]) => `inline constexpr std::size_t ${k} = ${v};`).join('\n')}

extern const char kStringPool[kStringPoolSize + 1];
extern const Node kNodes[kNodeCount];
extern const Property kProperties[kPropertyCount];
extern const StrRef kEnumValues[kEnumValueCount];
extern const Action kActions[kActionCount];  // sorted by name (byte order)

inline std::string_view str(StrRef r) noexcept { return {kStringPool + r.offset, r.length}; }

}  // namespace cg::ocpp::schema::tables
`;

  const lines = [];
  lines.push(`${banner}
#include "ocpp/generated/schema_tables.hpp"

namespace cg::ocpp::schema::tables {

constexpr char kStringPool[kStringPoolSize + 1] =`);
  if (strings.length === 0) lines.push('    ""');
  for (const s of strings) lines.push(`    ${cxxString(s)}  // ${offsets.get(s)}`);
  lines[lines.length - 1] = lines[lines.length - 1].replace(/ {2}\/\/ (\d+)$/, ';  // $1');
  if (strings.length === 0) lines[lines.length - 1] += ';';
  if (strings.length > 0) {
    // Catches a pool literal that does not match the offsets (it would be zero-padded silently).
    const last = strings[strings.length - 1];
    lines.push(`static_assert(std::string_view(kStringPool + ${offsets.get(last)}, ${Buffer.byteLength(last, 'utf8')}) == ` +
               `${cxxString(last)});`);
  }

  lines.push('');
  lines.push('// {minimum, maximum, min_length, max_length, min_items, max_items, first, count, items, kind, flags}');
  lines.push('// Identical nodes are shared; the comment names the place a node was first seen.');
  lines.push('constexpr Node kNodes[kNodeCount] = {');
  tables.nodes.forEach((n, i) => {
    const flags = n.flags === 0 ? '0' : hex(n.flags, 2);
    const fields = [cxxDouble(n.minimum), cxxDouble(n.maximum), n.minLength,
                    n.maxLength === UNBOUNDED ? 'kUnbounded' : n.maxLength, n.minItems,
                    n.maxItems === UNBOUNDED ? 'kUnbounded' : n.maxItems, n.first, n.count,
                    n.items === NO_NODE ? 'kNoNode' : n.items, `NodeKind::${n.kind}`, flags];
    lines.push(`    {${fields.join(', ')}},  // ${i} ${n.origin || '(anonymous)'}`);
  });
  lines.push('};');

  lines.push('');
  lines.push('// {name, node, required}');
  lines.push('constexpr Property kProperties[kPropertyCount] = {');
  tables.properties.forEach((p, i) => {
    lines.push(`    {${ref(p.name)}, ${p.node}, ${p.required}},  // ${i} ${p.name}`);
  });
  lines.push('};');

  lines.push('');
  lines.push('constexpr StrRef kEnumValues[kEnumValueCount] = {');
  tables.enumValues.forEach((e, i) => {
    lines.push(`    ${ref(e)},  // ${i} ${e}`);
  });
  lines.push('};');

  lines.push('');
  lines.push('// {name, request, response}');
  lines.push('constexpr Action kActions[kActionCount] = {');
  for (const a of actions) lines.push(`    {${ref(a.name)}, ${a.request}, ${a.response}},  // ${a.name}`);
  lines.push('};');
  lines.push('');
  lines.push('}  // namespace cg::ocpp::schema::tables');
  lines.push('');
  return {hpp, cpp: lines.join('\n')};
}

function sourceLabelFor(schemasPath) {
  // Name the npm package and version when the file sits in one, and keep the
  // path relative to the repository so the output does not depend on the clone.
  let label = toPosix(path.relative(REPO_ROOT, schemasPath));
  if (label.startsWith('..') || path.isAbsolute(label)) label = path.basename(schemasPath);
  let dir = path.dirname(schemasPath);
  for (let i = 0; i < 4; i += 1) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        const meta = JSON.parse(fs.readFileSync(pkg, 'utf8'));
        if (meta.name && meta.version) {
          return `${label} (npm ${meta.name}@${meta.version})`;
        }
      } catch (e) {
        // Not a usable package.json; fall through to the bare path.
      }
      break;
    }
    dir = path.dirname(dir);
  }
  return label;
}

function writeIfChanged(file, content) {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === content) return false;
  fs.writeFileSync(file, content);
  return true;
}

function main(argv) {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write('usage: node tools/schema-gen/generate.js [schemas.json] [out_dir]\n');
    return 0;
  }
  const schemasPath = path.resolve(argv[0] || DEFAULT_SCHEMAS);
  const outDir = path.resolve(argv[1] || DEFAULT_OUT_DIR);
  const raw = fs.readFileSync(schemasPath);
  const sha256 = crypto.createHash('sha256').update(raw).digest('hex');
  const compiled = compile(JSON.parse(raw.toString('utf8')));
  const {hpp, cpp} = emit(compiled, sourceLabelFor(schemasPath), sha256);
  fs.mkdirSync(outDir, {recursive: true});
  const changed = [
    writeIfChanged(path.join(outDir, 'schema_tables.hpp'), hpp),
    writeIfChanged(path.join(outDir, 'schema_tables.cpp'), cpp),
  ];
  const {tables, actions} = compiled;
  process.stdout.write(`schema-gen: ${actions.length} actions, ${tables.nodes.length} nodes, ` +
                       `${tables.properties.length} properties, ${tables.enumValues.length} enum values` +
                       `${changed.some(Boolean) ? '' : ' (unchanged)'}\n`);
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`schema-gen: ${e.message}\n`);
    process.exitCode = 1;
  }
}

module.exports = {compile, emit};
