"""A plugin declares training like a built-in: its registration is read from the syntax tree, its phase runs by
the harness's loop in its isolated process, trains exactly what the same functions train in-process, and every
failure of its code, or a memory that is not plain data, is one error naming it."""

import copy
import re
import textwrap

import pytest
import torch

from harness.core.errors import BenchError
from harness.core.layout import ResultsLayout
from harness.grid.selection import Selection, expand
from harness.methods.exchange import phase_from_data
from harness.methods.isolation import Isolation
from harness.methods.phase import run_phase
from harness.methods.plugins import PluginFunction, load_plugin
from harness.methods.training import TrainingPhase
from harness.run.execution import execute
from harness.run.pipeline import Workspace

FUNCTIONS = """
    from harness.methods import TrainingPhase, register_method


    def l1_on_scales(phase):
        return 1e-2 * sum(bn.weight.abs().sum() for bn in phase.batchnorms.values())


    def note_scales(phase):
        phase.memory["steps"] = phase.step + 1
        if phase.end_of_epoch:
            phase.memory.setdefault("scales", []).append(
                {layer: bn.weight.detach().clone() for layer, bn in phase.batchnorms.items()})
    """
"""The phase's functions: the plugin's file starts with them, and the in-process reference runs them too."""
SLIMMING = FUNCTIONS + """

    @register_method("plugin-slimming", kind="structured",
                     training=TrainingPhase(0.5, penalty=l1_on_scales, hook=note_scales))
    def plugin_slimming(ctx):
        return ctx.keep_top({layer: scales.abs() for layer, scales in ctx.memory["scales"][-1].items()})
    """
RAISES = """
    from harness.methods import TrainingPhase, register_method


    def falls_over(phase):
        raise ValueError("no penalty today")


    @register_method("plugin-penalty-raises", kind="structured", training=TrainingPhase(0.5, penalty=falls_over))
    def select(ctx):
        return None
    """
KEEPS_A_MODULE = """
    from harness.methods import TrainingPhase, register_method


    def keep_layer(phase):
        phase.memory["layer"] = [phase.model]


    @register_method("plugin-keeps-module", kind="structured", training=TrainingPhase(fraction=0.5, hook=keep_layer))
    def select(ctx):
        return None
    """


def plugin(folder, body):
    path = folder / "method.py"
    path.write_text(textwrap.dedent(body).lstrip())
    (method,) = load_plugin(path)
    return method, path


def config(track, method):
    (config,) = expand(track, Selection(methods=(method,), targets=("uniform-50",), schedules=("ft",), budgets=(2,),
                                        seeds=(0,), twins=False))
    return config


class Reference(Isolation):
    """Isolation that also keeps a copy of a phase's inputs, for the same phase to run again in-process, and the
    weights the phase left in the model it was given."""

    def train_phase(self, method, context, train_split, recipe, data_generator):
        self.inputs = (copy.deepcopy(context), train_split, recipe, data_generator.get_state())
        self.run = super().train_phase(method, context, train_split, recipe, data_generator)
        self.trained = {name: value.clone() for name, value in context.model.state_dict().items()}
        return self.run


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child takes the parent's count: one, so both sum in the same order
    yield
    torch.set_num_threads(threads)


def test_a_plugin_declares_training_and_rounds_from_its_syntax_tree(tmp_path):
    method, path = plugin(tmp_path, SLIMMING.replace("plugin-slimming", "plugin-slimming-read"))
    assert method.trains and method.rounds == 1
    assert method.training == TrainingPhase(
        0.5, penalty=PluginFunction("plugin-slimming-read", path, "l1_on_scales", 4),
        hook=PluginFunction("plugin-slimming-read", path, "note_scales", 8))
    with pytest.raises(BenchError, match=r"its training phase \('l1_on_scales'\) runs in its isolated process"):
        method.training.penalty(None)
    rounds = tmp_path / "rounds"
    rounds.mkdir()
    (masks, _) = plugin(rounds, """
        from harness.methods import register_method

        @register_method("plugin-rounds", kind="unstructured", rounds=3)
        def select(ctx):
            return None
        """)
    assert (masks.rounds, masks.training, masks.trains) == (3, None, True)


def test_a_plugins_phase_trains_in_its_child_exactly_what_its_functions_train_in_process(
        tmp_path, digits_track, digits_results, one_thread):
    method, _ = plugin(tmp_path, SLIMMING)
    isolation = Reference()
    workspace = Workspace(digits_track, ResultsLayout(digits_results), isolation=isolation)
    record = execute(workspace, config(digits_track, method.name))
    assert record.status == "ok", record.error  # its select, in its own child, found the scales its phase kept
    assert (record.phases.pre_pruning_epochs, record.phases.pre_pruning_steps) == (1, 20)
    context, train_split, recipe, state = isolation.inputs
    functions = {}
    exec(compile(textwrap.dedent(FUNCTIONS), "functions", "exec"), functions)
    data_generator = torch.Generator()
    data_generator.set_state(state)
    expected = run_phase(TrainingPhase(0.5, penalty=functions["l1_on_scales"], hook=functions["note_scales"]),
                         context, train_split, recipe, data_generator)
    run = isolation.run
    assert (run.status, run.steps, run.train_loss) == (expected.status, expected.steps, expected.train_loss)
    assert run.memory["steps"] == expected.memory["steps"] == 20 and len(run.memory["scales"]) == 1
    assert run.memory["scales"][0].keys() == expected.memory["scales"][0].keys() == context.batchnorms.keys()
    for layer, scales in expected.memory["scales"][0].items():
        assert torch.equal(run.memory["scales"][0][layer], scales), layer
    for name, value in context.model.state_dict().items():
        assert torch.equal(isolation.trained[name], value), name
    dense = workspace.dense_model(0).state_dict()
    assert any(not torch.equal(dense[name], value) for name, value in isolation.trained.items())


@pytest.mark.parametrize("body, message", [
    (RAISES, r"training phase: raised ValueError: no penalty today at {path}:5$"),
    (KEEPS_A_MODULE, r"training phase: BenchError: its memory holds a value of type DigitsCNN at layer/0; a method's "
                     r"memory is plain data \(numbers, strings, booleans, None, tensors, and lists and string-keyed "
                     r"dicts of them\)$"),
], ids=["penalty-raises", "memory-holds-a-module"])
def test_a_phase_that_fails_in_its_child_is_one_error_naming_the_method(tmp_path, digits_track, digits_results,
                                                                        body, message):
    method, path = plugin(tmp_path, body)
    workspace = Workspace(digits_track, ResultsLayout(digits_results))
    model = workspace.dense_model(0)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with pytest.raises(BenchError) as raised:
        workspace.train_phase(config(digits_track, method.name), model, 1)
    text = str(raised.value)
    assert text.startswith(f"method '{method.name}' ({path}) training phase: ") and "\n" not in text
    assert re.search(message.format(path=re.escape(str(path))), text), text
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


HEADER = """
    from harness.methods import TrainingPhase, register_method
    FRACTION = 0.5


    def penalty(phase):
        return 0.0


    def two(phase, extra):
        return 0.0

    """
DECLARATIONS = {
    "not-a-call": ('training=0.5', "method 'plugin-bad': write training=TrainingPhase(0.5, penalty=my_penalty, "
                                   "hook=my_hook) naming module-level functions"),
    "another-call": ('training=dict(fraction=0.5, penalty=penalty)', "method 'plugin-bad': write training="
                                                                     "TrainingPhase(0.5, penalty=my_penalty"),
    "computed-fraction": ('training=TrainingPhase(FRACTION, penalty=penalty)',
                          "method 'plugin-bad': TrainingPhase's fraction must be a literal number"),
    "fraction-out-of-range": ('training=TrainingPhase(1.5, penalty=penalty)',
                              "method 'plugin-bad': a training phase's fraction of the budget must lie in (0, 1)"),
    "neither-function": ('training=TrainingPhase(0.5)', "method 'plugin-bad': a training phase needs a penalty, "
                                                        "a hook or both"),
    "lambda-penalty": ('training=TrainingPhase(0.5, penalty=lambda phase: 0.0)',
                       "method 'plugin-bad': the training phase's penalty must name a module-level function of this "
                       "file (`penalty=my_penalty` with `def my_penalty(phase):`)"),
    "imported-hook": ('training=TrainingPhase(0.5, hook=TrainingPhase)',
                      "method 'plugin-bad': the training phase's hook must name a module-level function"),
    "unknown-argument": ('training=TrainingPhase(0.5, penalty=penalty, lr=0.1)',
                         "method 'plugin-bad': TrainingPhase has no argument 'lr'"),
    "rounds-zero": ('rounds=0', "method 'plugin-bad': rounds must be a whole number >= 1"),
    "rounds-computed": ('rounds=FRACTION', "register_method's 'rounds' must be a literal int"),
}


@pytest.mark.parametrize("name", sorted(DECLARATIONS))
def test_a_bad_training_declaration_is_one_line_naming_the_file_line_and_the_fix(tmp_path, name):
    argument, message = DECLARATIONS[name]
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(HEADER).lstrip() + textwrap.dedent(f"""
        @register_method("plugin-bad", kind="structured", {argument})
        def select(ctx):
            return None
        """))
    with pytest.raises(BenchError) as raised:
        load_plugin(path)
    assert str(raised.value).startswith(f"{path}:13: {message}"), str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_phase_function_must_take_the_phase_context_alone(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(textwrap.dedent(HEADER).lstrip() + textwrap.dedent("""
        @register_method("plugin-bad", kind="structured", training=TrainingPhase(0.5, penalty=two))
        def select(ctx):
            return None
        """))
    with pytest.raises(BenchError, match=re.escape(f"{path}:9: penalty 'two' of method 'plugin-bad' must take "
                                                   "exactly one argument, the PhaseContext; it takes phase, extra")):
        load_plugin(path)


def test_the_parent_checks_a_phase_answer_before_it_touches_the_model():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    good = {"status": "ok", "steps": 4, "train_loss": [0.5], "memory": {"chosen": [1, 0]},
            "state": {name: value + 1 for name, value in model.state_dict().items()}}
    run, state = phase_from_data(good, model)
    assert (run.status, run.steps, run.train_loss, run.memory) == ("ok", 4, [0.5], {"chosen": [1, 0]})
    assert torch.equal(state["0.bias"], model.state_dict()["0.bias"] + 1)
    refused = {
        "its trained weights do not have the model's entries": {"state": {"0.weight": torch.zeros(2, 3)}},
        "its trained '0.weight' is not a torch.float32 tensor of shape (2, 3)":
            {"state": {**good["state"], "0.weight": torch.zeros(3, 2)}},
        "its trained '0.bias' holds non-finite values":
            {"state": {**good["state"], "0.bias": torch.tensor([1.0, float("inf")])}},
        "answered a phase without a status, a step count and a loss per epoch": {"steps": "4"},
        "its memory holds a value of type set at chosen": {"memory": {"chosen": {1}}},
    }
    for message, change in refused.items():
        with pytest.raises(BenchError, match=re.escape(message)):
            phase_from_data({**good, **change}, model)
    diverged = {**good, "status": "diverged", "train_loss": [float("nan")],
                "state": {**good["state"], "0.bias": torch.full((2,), float("nan"))}}
    assert phase_from_data(diverged, model)[0].status == "diverged"
