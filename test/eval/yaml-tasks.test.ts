/**
 * lm-eval YAML task configs (--include-path): lm-eval 0.4.12's own configs of the built-in tasks
 * give exactly the built-in tasks' items and lm-eval's golden requests; configs of each output type
 * with the Jinja lm-eval configs use; include:, tags and groups; unsupported functions and settings
 * refused in one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { harnessPrefixes } from '../../src/eval/lm-eval/fewshot.js';
import { loadBuiltinTask } from '../../src/eval/lm-eval/load.js';
import { literalEval } from '../../src/eval/lm-eval/python-literal.js';
import { exactMatch } from '../../src/eval/metrics.js';
import { runTask, scoringPairs } from '../../src/eval/run-task.js';
import { loadTasks } from '../../src/eval/task-files.js';
import type { Task } from '../../src/eval/tasks.js';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';
import { golden } from './lm-eval-golden.js';
import { makeWorld, randomParams, writeCheckpoint } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-yaml-tasks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const noCache = join(dir, 'no-cache');

function write(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const readmeConfigs = new Map<string, string[]>();

/**
 * A dataset in `huggingface-cli download --local-dir` layout: one JSON Lines file per split, placed
 * by the README's configs (each config written for a repository kept there).
 */
function dataset(datasets: string, repository: string, config: string, splits: Record<string, readonly object[]>) {
  const root = join(datasets, ...repository.split('/'));
  const files = Object.entries(splits).map(([split, docs]) => {
    write(join(root, config, `${split}.jsonl`), docs.map((d) => `${JSON.stringify(d)}\n`).join(''));
    return `  - split: ${split}\n    path: ${config}/${split}.jsonl\n`;
  });
  const configs = readmeConfigs.get(root) ?? [];
  configs.push(`- config_name: ${config}\n  data_files:\n${files.join('')}`);
  readmeConfigs.set(root, configs);
  write(join(root, 'README.md'), `---\nconfigs:\n${configs.join('')}---\n`);
}

const plain = (x: unknown) => JSON.parse(JSON.stringify(x ?? null));

// lm-eval 0.4.12's task configs (lm_eval/tasks/<name>/), as the release ships them.
const LM_EVAL_CONFIGS: Record<string, string> = {
  piqa: `task: piqa
dataset_path: baber/piqa
dataset_name: null
output_type: multiple_choice
training_split: train
validation_split: validation
test_split: null
doc_to_text: "Question: {{goal}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{[sol1, sol2]}}"
should_decontaminate: true
doc_to_decontamination_query: goal
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  winogrande: `task: winogrande
dataset_path: allenai/winogrande
dataset_name: winogrande_xl
output_type: multiple_choice
training_split: train
validation_split: validation
doc_to_text: !function preprocess_winogrande.doc_to_text
doc_to_target: !function preprocess_winogrande.doc_to_target
doc_to_choice: !function preprocess_winogrande.doc_to_choice
should_decontaminate: true
doc_to_decontamination_query: sentence
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  wsc273: `task: wsc273
dataset_path: winograd_wsc
dataset_name: wsc273
output_type: multiple_choice
test_split: test
doc_to_text: label
process_docs: !function utils.process_doc
doc_to_target: "{% set index = pronoun_loc + pronoun | length %}{{text[index:]}}"
doc_to_choice: "{% set template = text[:pronoun_loc] %}{{[template+options[0], template+options[1]]}}"
should_decontaminate: true
doc_to_decontamination_query: text
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  lambada_openai: `tag:
  - lambada
task: lambada_openai
dataset_path: EleutherAI/lambada_openai
dataset_name: default
output_type: loglikelihood
test_split: test
doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{' '+text.split(' ')[-1]}}"
should_decontaminate: true
doc_to_decontamination_query: "{{text}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  sciq: `task: sciq
dataset_path: allenai/sciq
dataset_name: null
output_type: multiple_choice
training_split: train
validation_split: validation
test_split: test
doc_to_text: "{{support.lstrip()}}\\nQuestion: {{question}}\\nAnswer:"
doc_to_target: 3
doc_to_choice: "{{[distractor1, distractor2, distractor3, correct_answer]}}"
should_decontaminate: true
doc_to_decontamination_query: "{{support}} {{question}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  logiqa: `task: logiqa
dataset_path: EleutherAI/logiqa
dataset_name: logiqa
output_type: multiple_choice
training_split: train
validation_split: validation
test_split: test
doc_to_choice: "{{options}}"
doc_to_text: !function utils_logiqa.doc_to_text
doc_to_target: !function utils_logiqa.doc_to_target
doc_to_decontamination_query: "{{context}}"
should_decontaminate: true
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`,
  wikitext: `task: wikitext
dataset_path: EleutherAI/wikitext_document_level
dataset_name: wikitext-2-raw-v1
output_type: loglikelihood_rolling
training_split: train
validation_split: validation
test_split: test
doc_to_text: ""
doc_to_target: !function preprocess_wikitext.wikitext_detokenizer
process_results: !function preprocess_wikitext.process_results
should_decontaminate: true
doc_to_decontamination_query: "{{page}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
metadata:
  version: 2.0
`,
};

LM_EVAL_CONFIGS.arc_easy = `tag:
  - ai2_arc
task: arc_easy
dataset_path: allenai/ai2_arc
dataset_name: ARC-Easy
output_type: multiple_choice
training_split: train
validation_split: validation
test_split: test
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"
should_decontaminate: true
doc_to_decontamination_query: "Question: {{question}}\\nAnswer:"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`;
// arc_challenge.yaml includes arc_easy.yaml, which lives in its folder.
LM_EVAL_CONFIGS.arc_challenge =
  'include: ../arc_easy/arc_easy.yaml\ntask: arc_challenge\ndataset_name: ARC-Challenge\n';

const REPOSITORIES: Record<string, [string, string]> = {
  piqa: ['baber/piqa', 'default'],
  winogrande: ['allenai/winogrande', 'winogrande_xl'],
  wsc273: ['winograd_wsc', 'wsc273'],
  lambada_openai: ['EleutherAI/lambada_openai', 'default'],
  sciq: ['allenai/sciq', 'default'],
  logiqa: ['EleutherAI/logiqa', 'logiqa'],
  wikitext: ['EleutherAI/wikitext_document_level', 'wikitext-2-raw-v1'],
  arc_easy: ['allenai/ai2_arc', 'ARC-Easy'],
  arc_challenge: ['allenai/ai2_arc', 'ARC-Challenge'],
};

test("lm-eval 0.4.12's own YAML configs of the nine tasks give the built-in tasks' items, few-shot pools and lm-eval's requests at 0, 1 and 3 shots", async () => {
  const root = join(dir, 'own');
  const datasets = join(root, 'datasets');
  const configs = join(root, 'configs');
  for (const [name, text] of Object.entries(LM_EVAL_CONFIGS)) {
    write(join(configs, name, `${name}.yaml`), text);
    const [repository, config] = REPOSITORIES[name]!;
    dataset(datasets, repository, config, golden.docs[name]!);
  }
  const lookup = { cacheDir: noCache, datasetDir: datasets, includePath: [configs] };
  for (const name of Object.keys(LM_EVAL_CONFIGS)) {
    const [fromYaml] = await loadTasks([name], [], lookup);
    const builtin = await loadBuiltinTask(name, lookup);
    assert.equal(fromYaml!.name, name);
    assert.equal(fromYaml!.path, join(configs, name, `${name}.yaml`));
    assert.equal(fromYaml!.outputType, builtin.outputType, name);
    assert.deepEqual(fromYaml!.metrics, builtin.metrics, name);
    assert.deepEqual(plain(fromYaml!.items), plain(builtin.items), name);
    assert.deepEqual(plain(fromYaml!.fewshot), plain(builtin.fewshot), name);
    assert.notEqual(fromYaml!.sha256, builtin.sha256, 'a YAML task is identified by its config');
    const expected = golden.tasks[name]!;
    const task = fromYaml!;
    for (const shots of task.outputType === 'loglikelihood_rolling' ? [] : [0, 1, 3]) {
      const prefixes = harnessPrefixes(task.name, task.fewshot!, task.items, task.items.length, shots, 1234);
      task.items.forEach((item, i) => {
        const pairs = scoringPairs(item, prefixes[i]!).map((p) => [p.context, p.continuation]);
        assert.deepEqual(pairs, expected.docs[i]!.shots[String(shots)], `${name} doc ${i} ${shots}-shot`);
      });
    }
  }
  // The tags the configs carry select them; arc_challenge inherits ARC-Easy's through include:.
  assert.deepEqual(
    (await loadTasks(['lambada'], [], lookup)).map((t) => t.name),
    ['lambada_openai'],
  );
  assert.deepEqual(
    (await loadTasks(['ai2_arc'], [], lookup)).map((t) => t.name),
    ['arc_challenge', 'arc_easy'],
  );
});

/** Documents of a made-up dataset with the columns the configs below read. */
const QA_DOCS = [
  { question: '  What is 2 plus 3? ', choices: ['4', '5', '6'], label: 1, text: 'the cat sat on the mat' },
  { question: 'What is 4 plus 4?', choices: ['8', '9', '7'], label: 0, text: 'a fox found a coin' },
  { question: 'Is the sky green?', choices: ['yes', 'no', 'maybe'], label: 1, text: 'the river flows to the sea' },
];

function qaWorld(name: string, configs: Record<string, string>) {
  const root = join(dir, name);
  const datasets = join(root, 'datasets');
  dataset(datasets, 'test/qa', 'default', { train: QA_DOCS, test: QA_DOCS.slice(0, 2) });
  for (const [file, text] of Object.entries(configs)) write(join(root, 'configs', file), text);
  return { cacheDir: noCache, datasetDir: datasets, includePath: [join(root, 'configs')] };
}

const QA = 'dataset_path: test/qa\ntraining_split: train\ntest_split: test\n';

test('one config of each output type: Jinja templates and filters, column names, literal choices and description', async () => {
  const lookup = qaWorld('kinds', {
    'choice.yaml': `task: qa_choice\n${QA}output_type: multiple_choice
doc_to_text: "Q: {{question|trim}}\\nA:"
doc_to_choice: "{{choices}}"
doc_to_target: label
target_delimiter: "  "
fewshot_delimiter: "\\n###\\n"
description: "Arithmetic.\\n\\n"
`,
    'literal.yaml': `task: qa_literal\n${QA}output_type: multiple_choice
doc_to_text: "{{question.strip()|upper}}"
doc_to_choice: ["no", "yes"]
doc_to_target: "{{ 1 if label == 1 else 0 }}"
metric_list:
  - metric: acc
`,
    'last-word.yaml': `task: qa_last_word\n${QA}output_type: loglikelihood
doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{' '+text.split(' ')[-1]}}"
`,
    'rolling.yaml': `task: qa_rolling\n${QA}output_type: loglikelihood_rolling
doc_to_target: "{{question|trim}}\\n{{text}}\\n"
`,
    'generate.yaml': `task: qa_generate\n${QA}
doc_to_text: "Question: {{question|trim}}\\nAnswer:"
doc_to_target: "{{choices[label]}}"
generation_kwargs:
  until: ["\\n", "."]
  do_sample: false
`,
  });
  const tasks = await loadTasks(['qa_choice', 'qa_literal', 'qa_last_word', 'qa_rolling', 'qa_generate'], [], lookup);
  const [choice, literal, lastWord, rolling, generate] = tasks as [Task, Task, Task, Task, Task];

  assert.equal(choice.outputType, 'multiple_choice');
  assert.deepEqual(plain(choice.items[0]), {
    kind: 'multiple_choice',
    id: '0',
    meta: QA_DOCS[0],
    context: 'Q: What is 2 plus 3?\nA:',
    choices: ['4', '5', '6'],
    gold: 1,
    targetDelimiter: '  ',
  });
  assert.deepEqual(choice.metrics, ['acc', 'acc_norm']);
  // The description comes before the demonstrations, at 0 shots too.
  assert.deepEqual(harnessPrefixes(choice.name, choice.fewshot!, choice.items, 2, 0, 1234), [
    'Arithmetic.\n\n',
    'Arithmetic.\n\n',
  ]);
  const [oneShot] = harnessPrefixes(choice.name, choice.fewshot!, choice.items, 1, 1, 1234);
  assert.match(oneShot!, /^Arithmetic\.\n\nQ: [^\n]+\nA: {2}\S+\n###\n$/);

  assert.deepEqual(
    literal.items.map((i) => (i.kind === 'multiple_choice' ? [i.context, i.choices, i.gold] : undefined)),
    [
      ['WHAT IS 2 PLUS 3?', ['no', 'yes'], 1],
      ['WHAT IS 4 PLUS 4?', ['no', 'yes'], 0],
    ],
  );
  assert.deepEqual(literal.metrics, ['acc']);

  assert.deepEqual(
    lastWord.items.map((i) => (i.kind === 'loglikelihood' ? [i.context, i.target] : undefined)),
    [
      ['the cat sat on the', ' mat'],
      ['a fox found a', ' coin'],
    ],
  );
  assert.deepEqual(lastWord.metrics, ['perplexity', 'acc']);

  assert.equal(rolling.outputType, 'loglikelihood_rolling');
  assert.deepEqual(
    rolling.items.map((i) => (i.kind === 'loglikelihood_rolling' ? [i.text, i.counts] : undefined)),
    [
      ['What is 2 plus 3?\nthe cat sat on the mat\n', undefined],
      ['What is 4 plus 4?\na fox found a coin\n', undefined],
    ],
    "the template's trailing newline is kept, as lm-eval's keep_trailing_newline keeps it",
  );
  assert.equal(rolling.fewshot, undefined);

  assert.equal(generate.outputType, 'generate_until', 'output_type defaults to generate_until');
  assert.deepEqual(
    generate.items.map((i) => (i.kind === 'generate_until' ? [i.context, i.answer, i.until] : undefined)),
    [
      ['Question: What is 2 plus 3?\nAnswer:', '5', ['\n', '.']],
      ['Question: What is 4 plus 4?\nAnswer:', '8', ['\n', '.']],
    ],
  );
  assert.deepEqual(generate.metrics, ['exact_match']);
});

test('a generate_until config without generation_kwargs stops at its few-shot delimiter, as lm-eval defaults', async () => {
  const lookup = qaWorld('until', {
    'g.yaml': `task: g\n${QA}output_type: generate_until\ndoc_to_text: "{{question}}"\ndoc_to_target: "{{label}}"\nfewshot_delimiter: "\\n\\n\\n"\n`,
  });
  const [task] = await loadTasks(['g'], [], lookup);
  assert.deepEqual(
    task!.items.map((i) => (i.kind === 'generate_until' ? [i.answer, i.until] : undefined)),
    [
      ['1', ['\n\n\n']],
      ['0', ['\n\n\n']],
    ],
  );
});

test("include: the included file's keys, overridden by the including file's own; a YAML path names its task directly", async () => {
  const lookup = qaWorld('include', {
    '_base.yaml.inc': `${QA}output_type: multiple_choice\ndoc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n`,
    'base.yaml': `include: _base.yaml.inc\ntask: qa_base\n`,
    'sub/child.yaml': `include: ../base.yaml\ntask: qa_child\ndoc_to_text: "Q: {{question|trim}}"\ntarget_delimiter: ""\n`,
  });
  const [base, child] = await loadTasks(['qa_base', 'qa_child'], [], lookup);
  assert.equal(base!.items[0]!.kind === 'multiple_choice' && base!.items[0]!.context, QA_DOCS[0]!.question);
  const item = child!.items[0]!;
  assert.equal(item.kind === 'multiple_choice' && item.context, 'Q: What is 2 plus 3?');
  assert.equal(item.kind === 'multiple_choice' && item.targetDelimiter, '');
  assert.notEqual(base!.sha256, child!.sha256, 'the resolved config is part of the identity');
  const [byPath] = await loadTasks([join(dirname(lookup.includePath[0]!), 'configs', 'sub', 'child.yaml')], [], {
    ...lookup,
    includePath: [],
  });
  assert.deepEqual(plain(byPath!.items), plain(child!.items));
  assert.equal(byPath!.sha256, child!.sha256);
});

test('a tag selects every task carrying it, by name; a group its members in order; each task once', async () => {
  const task = (name: string, tag: string) =>
    `task: ${name}\ntag: ${tag}\n${QA}output_type: multiple_choice\ndoc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n`;
  const lookup = qaWorld('tags', {
    'b.yaml': task('qa_b', 'arith'),
    'a.yaml': task('qa_a', '[arith, other]'),
    'c.yaml': task('qa_c', 'other'),
    'group.yaml': 'group: everything\ntask:\n  - qa_c\n  - arith\n',
  });
  const names = async (...specs: string[]) => (await loadTasks(specs, [], lookup)).map((t) => t.name);
  assert.deepEqual(await names('arith'), ['qa_a', 'qa_b']);
  assert.deepEqual(await names('other'), ['qa_a', 'qa_c']);
  assert.deepEqual(await names('everything'), ['qa_c', 'qa_a', 'qa_b']);
  assert.deepEqual(await names('arith', 'other'), ['qa_a', 'qa_b', 'qa_c']);
});

async function refused(lookup: object, spec: string, pattern: RegExp) {
  await assert.rejects(loadTasks([spec], [], lookup), (e: Error) => {
    assert.equal(e.name, 'ConfigError');
    assert.equal(e.message.split('\n').length, 1);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a !function that is not built in is one line naming the file, the key and the function', async () => {
  const base = `${QA}output_type: multiple_choice\ndoc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n`;
  const lookup = qaWorld('functions', {
    'unknown.yaml': `task: unknown\n${base}process_docs: !function utils.process_docs\n`,
    'wrong-key.yaml': `task: wrong_key\n${base.replace('doc_to_target: label', 'doc_to_target: !function utils_logiqa.doc_to_text')}`,
    'other-module/other.yaml': `task: other_module\n${base}process_docs: !function utils.process_doc\n`,
    'other-module/utils.py': 'def process_doc(dataset):\n    return dataset\n',
  });
  const file = (name: string) => join(lookup.includePath[0]!, name).replaceAll('/', '\\/');
  await refused(
    lookup,
    'unknown',
    new RegExp(
      `^${file('unknown.yaml')}: process_docs: !function utils\\.process_docs: a Python function that is not built in \\(for process_docs: utils\\.process_doc\\)$`,
    ),
  );
  await refused(
    lookup,
    'wrong_key',
    new RegExp(
      `^${file('wrong-key.yaml')}: doc_to_target: !function utils_logiqa\\.doc_to_text: a Python function that is not built in`,
    ),
  );
  await refused(
    lookup,
    'other_module',
    /other\.yaml: process_docs: !function utils\.process_doc: .*utils\.py is not lm-eval 0\.4\.12's lm_eval\/tasks\/wsc273\/utils\.py/,
  );
});

test('settings that would change the numbers and are not supported are refused, naming the file and the key', async () => {
  const base = `${QA}output_type: multiple_choice\ndoc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n`;
  const lookup = qaWorld('unsupported', {
    'filters.yaml': `task: filters\n${base}filter_list:\n  - name: x\n`,
    'metric.yaml': `task: metric\n${base}metric_list:\n  - metric: brier_score\n`,
    'typo.yaml': `task: typo\n${base}doc_to_txt: "{{question}}"\n`,
    'kind.yaml': `task: kind\n${base.replace('multiple_choice', 'generate_until')}generation_kwargs:\n  do_sample: true\n`,
    'undefined.yaml': `task: undefined_var\n${base.replace('{{question}}', '{{questoin}}')}`,
    'missing-key.yaml': `task: missing_key\n${base.replace('{{question}}', '{{question}} {{choices[7]}}')}`,
    'not-in-list.yaml': `task: not_in_list\n${base.replace('doc_to_target: label', 'doc_to_target: "{{choices.index(\'zzz\')}}"')}`,
  });
  await refused(lookup, 'filters', /filters\.yaml: filter_list: not supported/);
  await refused(
    lookup,
    'metric',
    /metric\.yaml: metric_list\[0\]: metric brier_score is not supported for multiple_choice \(expected acc, acc_norm\)$/,
  );
  await refused(lookup, 'typo', /typo\.yaml: doc_to_txt: not an lm-eval task setting$/);
  await refused(lookup, 'kind', /kind\.yaml: generation_kwargs: only greedy generation is supported/);
  await refused(
    lookup,
    'nothing_like_it',
    /unknown task "nothing_like_it" in the built-in tasks .*, the YAML configs in /,
  );
  await assert.rejects(loadTasks(['undefined_var'], [], lookup), (e: Error) => {
    assert.equal(e.name, 'FormatError');
    assert.match(
      e.message,
      /test\.jsonl: row 0: doc_to_text: the template does not render \('questoin' is undefined\)/,
    );
    return true;
  });
  await assert.rejects(loadTasks(['missing_key'], [], lookup), (e: Error) => {
    assert.equal(e.name, 'FormatError');
    assert.match(
      e.message,
      /row 0: doc_to_text: the template does not render \(a value that is not defined is rendered/,
    );
    return true;
  });
  await assert.rejects(loadTasks(['not_in_list'], [], lookup), (e: Error) => {
    assert.equal(e.name, 'FormatError');
    assert.equal(e.message.split('\n').length, 1);
    assert.match(
      e.message,
      /row 0: doc_to_target: the template does not render \("zzz" is not in the list\) \(task not_in_list, test split\)$/,
    );
    return true;
  });
});

test("literalEval reads Python's literals as lm-eval's ast.literal_eval does, and refuses anything else", () => {
  assert.deepEqual(literalEval(`['a', "b's", 'c\\'d', "e\\"f"]`), ['a', "b's", "c'd", 'e"f']);
  assert.deepEqual(literalEval('( "x" ,  \'y\' , )'), ['x', 'y']);
  assert.deepEqual(literalEval("[1, -2, 3.5, True, False, None, ['\\n\\t\\x41\\u00e9']]"), [
    1,
    -2,
    3.5,
    true,
    false,
    null,
    ['\n\tAé'],
  ]);
  assert.deepEqual(literalEval('["\\ud83d\\ude00"]'), ['\ud83d\ude00']);
  assert.equal(literalEval("'con' 'cat'"), 'concat');
  for (const bad of ['[a, b]', "['a'", "['a'] x", '', "['a' 'b'", '{1: 2}'])
    assert.throws(() => literalEval(bad), /not a Python literal/, bad);
});

test('pythia eval --include-path: a YAML task evaluated, its rows under its lm-eval name and identity', async () => {
  const world = await makeWorld(join(dir, 'cli'));
  const checkpoint = join(dir, 'cli', 'tiny', 'step0');
  await writeCheckpoint(world, checkpoint, 1);
  const lookup = qaWorld('cli-tasks', {
    'choice.yaml': `task: qa_choice\n${QA}output_type: multiple_choice\ndoc_to_text: "Q: {{question|trim}} A:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n`,
  });
  const db = join(dir, 'cli', 'results.duckdb');
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const args = ['eval', checkpoint, '--include-path', lookup.includePath[0]!, '--tasks', 'qa_choice'];
  const r = spawnSync(
    process.execPath,
    [cli, ...args, '--dataset-dir', lookup.datasetDir, '--cache-dir', noCache, '--shots', '0,1', '--db', db],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const [task] = await loadTasks(['qa_choice'], [], lookup);
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    assert.deepEqual(await store.rows('SELECT task, output_type, items, sha256 FROM tasks'), [
      { task: 'qa_choice', output_type: 'multiple_choice', items: 2, sha256: task!.sha256 },
    ]);
    const metrics = await store.rows('SELECT DISTINCT task, shots, metric FROM aggregates ORDER BY shots');
    assert.deepEqual(plain(metrics), [
      { task: 'qa_choice', shots: 0, metric: 'acc' },
      { task: 'qa_choice', shots: 1, metric: 'acc' },
    ]);
  } finally {
    store.close();
  }
});

test("a YAML generate_until task's exact_match compares as written, as lm-eval's does (task files' trims)", async () => {
  const world = await makeWorld(join(dir, 'generate'));
  const model = { config: world.config, params: randomParams(world.config, 3), tokenizer: world.tokenizer };
  const docs = [{ q: 'Q: What is 2 plus 3? A:' }, { q: 'The cat sat on the' }, { q: 'Paris is a' }];
  const config = (answers: readonly string[]) => {
    const datasets = join(dir, 'generate', `datasets-${answers.length}-${answers[0]!.length}`);
    dataset(datasets, 'test/gen', 'default', { test: docs.map((d, i) => ({ ...d, answer: answers[i] })) });
    const file = write(
      join(datasets, 'gen.yaml'),
      'task: gen\ndataset_path: test/gen\ntest_split: test\ndoc_to_text: q\ndoc_to_target: answer\ngeneration_kwargs:\n  until: ["\\n"]\n',
    );
    return loadTasks([file], [], { cacheDir: noCache, datasetDir: datasets });
  };
  const options = { shots: 0, seed: 1234, batchSize: 2, maxGenTokens: 6 };
  const [first] = await config(['x', 'x', 'x']);
  const predictions = (await runTask(model, first!, options)).items.map((r) => r.prediction!);
  // The same predictions, against answers equal to them but for a trailing space.
  const [second] = await config(predictions.map((p) => `${p} `));
  const run = await runTask(model, second!, options);
  assert.deepEqual(
    run.items.map((r) => r.prediction),
    predictions,
  );
  assert.deepEqual(
    run.items.map((r) => r.exactMatch),
    [0, 0, 0],
  );
  assert.deepEqual(
    predictions.map((p) => exactMatch(p, `${p} `)),
    [1, 1, 1],
    'trimmed, they would match',
  );
});

test('bad configs are one line naming the file: an include cycle, a missing include, YAML that does not parse, a group member that is nowhere', async () => {
  const one = async (files: Record<string, string>, spec: string, pattern: RegExp) => {
    const lookup = qaWorld(`bad-${Object.keys(files).join('-').replaceAll('/', '_')}`, files);
    await assert.rejects(loadTasks([spec], [], lookup), (e: Error) => {
      assert.ok(['ConfigError', 'FormatError'].includes(e.name), e.name);
      assert.equal(e.message.split('\n').length, 1, e.message);
      assert.match(e.message, pattern);
      return true;
    });
  };
  await one(
    { 'a.yaml': 'include: b.yaml\ntask: a\n', 'b.yaml': 'include: a.yaml\n' },
    'a',
    /include: .*a\.yaml includes itself/,
  );
  await one({ 'c.yaml': 'include: nowhere.yaml\ntask: c\n' }, 'c', /c\.yaml: include: nowhere\.yaml: no such file/);
  await one({ 'd.yaml': 'task: d\ndoc_to_text: "unclosed\n' }, 'd', /d\.yaml: not valid YAML/);
  await one({ 'e.yaml': '- task: e\n' }, 'e', /e\.yaml: expected a mapping of task settings/);
  await one(
    { 'g.yaml': 'group: g\ntask:\n  - nowhere\n' },
    'g',
    /g\.yaml: task: nowhere is neither an --include-path task nor a built-in one/,
  );
  await one(
    { 'h.yaml': 'group: h\ntask:\n  - task: piqa\n    num_fewshot: 5\n' },
    'h',
    /h\.yaml: task: .*members with settings of their own are not supported/,
  );
  await one(
    { 'i.yaml': 'group: i\ntask: [piqa]\nnum_fewshot: 5\n' },
    'i',
    /i\.yaml: num_fewshot: a group's settings for its members are not supported/,
  );
});

test("a group's members may be built-in tasks, selected by the name the group gives", async () => {
  const datasets = join(dir, 'group-builtin', 'datasets');
  dataset(datasets, 'baber/piqa', 'default', golden.docs.piqa!);
  const configs = join(dir, 'group-builtin', 'configs');
  write(join(configs, 'group.yaml'), 'group: mine\ntask:\n  - piqa\n');
  const tasks = await loadTasks(['mine', 'piqa'], [], {
    cacheDir: noCache,
    datasetDir: datasets,
    includePath: [configs],
  });
  assert.deepEqual(
    tasks.map((t) => t.name),
    ['piqa'],
  );
  assert.equal(tasks[0]!.sha256, (await loadBuiltinTask('piqa', { cacheDir: noCache, datasetDir: datasets })).sha256);
});
