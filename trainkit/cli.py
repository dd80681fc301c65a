"""The `trainkit` command line: a thin layer over the Python API.

Every command maps to a function in `trainkit`; the CLI only parses options, prints, and
turns errors into one line per problem with exit code 1 (never a traceback).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import trainkit
from trainkit.cli_options import MultiValueGroup, MultiValueOption
from trainkit.errors import DataErrors, TrainkitError

DEFAULT_CONFIG = "config.yml"
DEFAULT_DOMAIN = "domain.yml"
DEFAULT_DATA = "data"


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    click.echo(f"Warning: {message}", err=True)


def _setup_output(verbose: bool = False) -> None:
    warnings.showwarning = _show_warning
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("trainkit").setLevel(logging.INFO)


def _verbosity(quiet: bool, verbose: bool, debug: bool) -> Any:
    """Rasa's output levels: `--quiet` says only warnings, errors and the model path;
    `-v` adds every info line, `--debug` everything; by default, progress and a summary."""
    from trainkit.engine import progress

    level = logging.DEBUG if debug else logging.INFO
    if quiet:
        level = logging.WARNING
    logging.getLogger("trainkit").setLevel(level)
    if verbose or debug:
        logging.getLogger().setLevel(level)
    return progress.reporting(None if quiet else progress.for_stream())


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--quiet`, `-v/--verbose` and `--debug`, as Rasa's commands have them."""
    func = click.option("--debug", is_flag=True, help="Print debug messages too.")(func)
    func = click.option("-v", "--verbose", is_flag=True, help="Print every info message.")(func)
    return click.option("--quiet", is_flag=True, help="Print only warnings, errors and the model.")(func)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Report trainkit errors as clean lines and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _setup_output()
        try:
            return func(*args, **kwargs)
        except DataErrors as exc:
            for problem in exc.problems:
                click.echo(f"Error: {problem}", err=True)
            sys.exit(1)
        except TrainkitError as exc:
            for line in str(exc).splitlines():
                click.echo(f"Error: {line}", err=True)
            sys.exit(1)

    return wrapper


def resolve_default(value: str | None, default: str) -> str | None:
    """A path the user gave must exist; the default is used only if it exists."""
    if value is not None:
        return value
    return default if Path(default).exists() else None


def resolve_data(values: tuple[str, ...]) -> list[str]:
    """Data paths given, or `data/` when it exists."""
    if values:
        return list(values)
    return [DEFAULT_DATA] if Path(DEFAULT_DATA).exists() else []


config_option = click.option("-c", "--config", default=None, help="Config file [default: config.yml].")
domain_option = click.option("-d", "--domain", default=None, help="Domain file or directory [default: domain.yml].")
PATHS_HELP = "Several paths after one flag, or the flag repeated."
data_option = click.option("--data", cls=MultiValueOption,
                           help=f"Data files or directories [default: data]. {PATHS_HELP}")
out_option = click.option("--out", default="models", show_default=True, help="Where to write the model.")
name_option = click.option("--fixed-model-name", default=None, help="Model file name instead of a timestamped one.")
force_option = click.option("--force", is_flag=True, help="Retrain every component, ignoring the cache.")
dry_option = click.option("--dry-run", is_flag=True, help="Only report what would train; exit 0, 1 or 8.")
jobs_option = click.option("-j", "--jobs", default=1, show_default=True,
                           help="Independent nodes to train at once (-1: all cores; never more than the cores allow).")
finetune_option = click.option(
    "--finetune", default=None, is_flag=False, flag_value="", metavar="[PATH]",
    help="Continue training this model (file or directory; no PATH: the newest model in --out).")
fraction_option = click.option(
    "--epoch-fraction", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True),
    help="With --finetune: train this fraction of the epochs each component's config gives.")
threads_option = click.option(
    "--num-threads", default=None, type=click.IntRange(1), metavar="N",
    help="BLAS threads each node trains with, in this process and its workers [default: TRAINKIT_BLAS_THREADS "
         "or 1]. With --jobs, at most cores // N nodes train at once.")
scheduler_option = click.option("--scheduler", default=None, metavar="ADDRESS",
                                help="Train on a Dask cluster, e.g. tcp://HOST:8786 [env: TRAINKIT_DASK_SCHEDULER].")


@click.group(cls=MultiValueGroup)
@click.version_option(trainkit.__version__, prog_name="trainkit")
def main() -> None:
    """Train conversational-assistant models from Rasa 3.x projects, as a cached build."""


def _print_statuses(results: dict[str, Any]) -> None:
    for name, status in results.items():
        mark = "U" if status["status"] == "up to date" else "R"
        click.echo(f"{mark} {name:<45} {status['reason']}")


def _use_threads(num_threads: int | None) -> None:
    if num_threads is not None:
        from trainkit.engine.threads import set_blas_threads

        set_blas_threads(num_threads)


def _finish_training(result: Any, dry_run: bool) -> None:
    if dry_run:
        _print_statuses(result.dry_run_results or {})
        messages = {0: "No training required.", 1: "The model needs to be retrained.", 8: "The training was forced."}
        click.echo(messages.get(result.code, ""))
    elif result.model:
        click.echo(f"Model: {result.model}")
    sys.exit(result.code)


@main.group(invoke_without_command=True)
@config_option
@domain_option
@data_option
@out_option
@name_option
@force_option
@dry_option
@jobs_option
@threads_option
@scheduler_option
@finetune_option
@fraction_option
@output_options
@click.option("--augmentation", default=None, type=int, help="Story augmentation factor [default: 50].")
@click.option("--persist-nlu-data", is_flag=True, help="Package the NLU training data with the model.")
@click.pass_context
@handle_errors
def train(ctx: click.Context, config: str | None, domain: str | None, data: tuple[str, ...], out: str,
          fixed_model_name: str | None, force: bool, dry_run: bool, jobs: int, num_threads: int | None,
          scheduler: str | None, finetune: str | None, epoch_fraction: float, quiet: bool, verbose: bool,
          debug: bool, augmentation: int | None, persist_nlu_data: bool) -> None:
    """Train a model (NLU and dialogue) from the project in the current directory."""
    if ctx.invoked_subcommand is not None:
        return
    _use_threads(num_threads)
    core_args = {} if augmentation is None else {"augmentation_factor": augmentation}
    with _verbosity(quiet, verbose, debug):
        result = trainkit.train(
            resolve_default(domain, DEFAULT_DOMAIN), resolve_default(config, DEFAULT_CONFIG), resolve_data(data),
            output=out, dry_run=dry_run, force_training=force, fixed_model_name=fixed_model_name,
            core_additional_arguments=core_args, n_jobs=jobs, persist_nlu_training_data=persist_nlu_data,
            scheduler=scheduler, model_to_finetune=finetune, finetuning_epoch_fraction=epoch_fraction,
        )
    _finish_training(result, dry_run)


@train.command("nlu")
@config_option
@domain_option
@click.option("-u", "--nlu", cls=MultiValueOption, help=f"NLU files or directories [default: data]. {PATHS_HELP}")
@out_option
@name_option
@force_option
@dry_option
@jobs_option
@threads_option
@scheduler_option
@finetune_option
@fraction_option
@output_options
@handle_errors
def train_nlu_command(config: str | None, domain: str | None, nlu: tuple[str, ...], out: str,
                      fixed_model_name: str | None, force: bool, dry_run: bool, jobs: int, num_threads: int | None,
                      scheduler: str | None, finetune: str | None, epoch_fraction: float,
                      quiet: bool, verbose: bool, debug: bool) -> None:
    """Train only the NLU pipeline."""
    _use_threads(num_threads)
    with _verbosity(quiet, verbose, debug):
        result = trainkit.train_nlu(
            resolve_default(config, DEFAULT_CONFIG), resolve_data(nlu), output=out,
            fixed_model_name=fixed_model_name, domain=domain, dry_run=dry_run, force_training=force, n_jobs=jobs,
            scheduler=scheduler, model_to_finetune=finetune, finetuning_epoch_fraction=epoch_fraction,
        )
    _finish_training(result, dry_run)


@train.command("core")
@config_option
@domain_option
@click.option("-s", "--stories", cls=MultiValueOption,
              help=f"Story/rule files or directories [default: data]. {PATHS_HELP}")
@out_option
@name_option
@force_option
@dry_option
@jobs_option
@threads_option
@scheduler_option
@finetune_option
@fraction_option
@output_options
@handle_errors
def train_core_command(config: str | None, domain: str | None, stories: tuple[str, ...], out: str,
                       fixed_model_name: str | None, force: bool, dry_run: bool, jobs: int, num_threads: int | None,
                       scheduler: str | None, finetune: str | None, epoch_fraction: float,
                       quiet: bool, verbose: bool, debug: bool) -> None:
    """Train only the dialogue policies."""
    _use_threads(num_threads)
    with _verbosity(quiet, verbose, debug):
        result = trainkit.train_core(
            resolve_default(domain, DEFAULT_DOMAIN), resolve_default(config, DEFAULT_CONFIG),
            resolve_data(stories), output=out, fixed_model_name=fixed_model_name, dry_run=dry_run,
            force_training=force, n_jobs=jobs, scheduler=scheduler, model_to_finetune=finetune,
            finetuning_epoch_fraction=epoch_fraction,
        )
    _finish_training(result, dry_run)


@main.command()
@config_option
@domain_option
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def status(config: str | None, domain: str | None, data: tuple[str, ...], as_json: bool) -> None:
    """Show each node as up to date or stale, with the reason. Exit 0 if nothing would train."""
    result = trainkit.train(
        resolve_default(domain, DEFAULT_DOMAIN), resolve_default(config, DEFAULT_CONFIG), resolve_data(data),
        dry_run=True,
    )
    if as_json:
        click.echo(json.dumps(result.dry_run_results or {}, indent=2))
    else:
        _print_statuses(result.dry_run_results or {})
    sys.exit(result.code)


@main.command()
@config_option
@domain_option
@data_option
@click.option("--fail-on-warnings", is_flag=True, help="Exit 1 on warnings too.")
@handle_errors
def validate(config: str | None, domain: str | None, data: tuple[str, ...], fail_on_warnings: bool) -> None:
    """Check the domain and training data for mistakes, without training."""
    from trainkit.data.importer import load_project
    from trainkit.data.validation import validate_project

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        project = load_project(resolve_default(config, DEFAULT_CONFIG), resolve_default(domain, DEFAULT_DOMAIN),
                               resolve_data(data))
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    problems = validate_project(project)
    errors = [p for p in problems if p.level == "error"]
    warned = [p for p in problems if p.level != "error"]
    for problem in errors:
        click.echo(f"Error: {problem}", err=True)
    for problem in warned:
        click.echo(f"Warning: {problem}", err=True)
    failed = bool(errors) or (fail_on_warnings and (warned or caught))
    click.echo(f"Validation {'failed' if failed else 'passed'}: {len(errors)} error(s), "
               f"{len(warned) + len(caught)} warning(s).")
    sys.exit(1 if failed else 0)


@main.group()
def data() -> None:
    """Inspect training data."""


@data.command("summary")
@config_option
@domain_option
@data_option
@click.option("--nlu", "nlu_file", default=None, help="Summarise a lone NLU file instead of a project.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def data_summary(config: str | None, domain: str | None, data: tuple[str, ...], nlu_file: str | None,
                 as_json: bool) -> None:
    """Count examples, intents, entities, slots, responses, stories and rules."""
    from trainkit.data.importer import load_project
    from trainkit.data.summary import nlu_file_summary, project_summary

    if nlu_file is not None:
        counts = nlu_file_summary(nlu_file)
    else:
        counts = project_summary(load_project(resolve_default(config, DEFAULT_CONFIG),
                                              resolve_default(domain, DEFAULT_DOMAIN), resolve_data(data)))
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
    else:
        for key, value in counts.items():
            click.echo(f"{key:<16} {value}")


model_option = click.option("-m", "--model", default="models", show_default=True,
                            help="Model archive, or a directory (newest).")
stories_option = click.option("-s", "--stories", cls=MultiValueOption,
                              help=f"Test story files or directories [default: tests]. {PATHS_HELP}")
test_nlu_option = click.option("-u", "--nlu", cls=MultiValueOption,
                               help=f"NLU test files or directories [default: data]. {PATHS_HELP}")
results_option = click.option("--out", default="results", show_default=True, help="Where to write reports and plots.")
e2e_option = click.option("--e2e", is_flag=True, help="Also parse the stories' user texts and check intents and entities.")
no_plot_option = click.option("--no-plot", is_flag=True, help="Write the reports only, no PNG plots.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")


def _finish_test_run(run: Any, out: str, as_json: bool) -> None:
    from trainkit.evaluation.console import run_lines, run_summary

    if as_json:
        click.echo(json.dumps(run_summary(run), sort_keys=True))
        return
    for line in run_lines(run, out):
        click.echo(line)


@main.group("test", invoke_without_command=True)
@model_option
@stories_option
@test_nlu_option
@results_option
@e2e_option
@no_plot_option
@json_option
@click.pass_context
@handle_errors
def test_group(ctx: click.Context, model: str, stories: tuple[str, ...], nlu: tuple[str, ...], out: str, e2e: bool,
               no_plot: bool, as_json: bool) -> None:
    """Test a trained model (as `rasa test`): dialogue on the test stories, NLU on the NLU data."""
    from trainkit.evaluation.project_test import DEFAULT_NLU, DEFAULT_STORIES, run_tests

    if ctx.invoked_subcommand is not None:
        return
    run = run_tests(model, stories or (DEFAULT_STORIES,), nlu or (DEFAULT_NLU,), out, e2e, not no_plot)
    _finish_test_run(run, out, as_json)


@test_group.command("core")
@model_option
@stories_option
@results_option
@e2e_option
@no_plot_option
@json_option
@handle_errors
def test_core_command(model: str, stories: tuple[str, ...], out: str, e2e: bool, no_plot: bool,
                      as_json: bool) -> None:
    """Replay test stories action by action (as `rasa test core`) and write the story report."""
    from trainkit.evaluation.project_test import DEFAULT_STORIES, run_core_tests

    run = run_core_tests(model, stories or (DEFAULT_STORIES,), out, e2e, not no_plot)
    _finish_test_run(run, out, as_json)


@test_group.command("nlu")
@model_option
@test_nlu_option
@results_option
@config_option
@click.option("--cross-validation", is_flag=True, help="Train and test on folds of the NLU data instead of a model.")
@click.option("-f", "--folds", default=5, show_default=True, help="Number of folds for --cross-validation.")
@no_plot_option
@json_option
@handle_errors
def test_nlu_command(model: str, nlu: tuple[str, ...], out: str, config: str | None, cross_validation: bool,
                     folds: int, no_plot: bool, as_json: bool) -> None:
    """Score intents and entities on labelled NLU data (as `rasa test nlu`)."""
    from trainkit.evaluation.project_test import DEFAULT_NLU, run_cross_validation, run_nlu_tests

    if cross_validation:
        run = run_cross_validation(resolve_default(config, DEFAULT_CONFIG), nlu or (DEFAULT_NLU,), folds, out,
                                   not no_plot)
    else:
        run = run_nlu_tests(model, nlu or (DEFAULT_NLU,), out, not no_plot)
    _finish_test_run(run, out, as_json)


@main.command()
@click.argument("text")
@model_option
@handle_errors
def parse(text: str, model: str) -> None:
    """Parse TEXT with a trained model and print Rasa's parse result as JSON."""
    from trainkit.model import load_model

    loaded = load_model(model, needs="nlu")
    click.echo(json.dumps(loaded.parse(text), indent=2, ensure_ascii=False))


@main.command()
@click.argument("directory", default=".")
@handle_errors
def init(directory: str) -> None:
    """Create a new project (an example assistant, dodo.py and Makefile) in DIRECTORY."""
    from trainkit.scaffold import init_project

    path = init_project(directory)
    click.echo(f"Created a new assistant in '{path}'. Train it with: cd {path} && doit train")


# ----------------------------------------------------------- talking to the assistant

model_option = click.option("-m", "--model", default="models", show_default=True,
                            help="Model archive, or a directory (the newest archive that has what is needed).")
endpoints_option = click.option("--endpoints", default=None,
                                help="Endpoints file naming the action server [default: endpoints.yml if present].")
seed_option = click.option("--seed", default=None, type=int, help="Seed for choosing response variations.")
max_actions_option = click.option("--max-actions", default=10, show_default=True, type=click.IntRange(1, 100),
                                  help="Actions the bot may take in a row before it must listen.")


def _action_server(endpoints: str | None) -> Any:
    from trainkit.dialogue.action_server import ActionServerClient
    from trainkit.dialogue.endpoints import find_action_endpoint

    endpoint = find_action_endpoint(endpoints)
    return ActionServerClient(endpoint) if endpoint is not None else None


def _input_lines() -> Any:
    return iter(sys.stdin.readline, "")


@main.group(invoke_without_command=True)
@model_option
@endpoints_option
@seed_option
@max_actions_option
@click.pass_context
@handle_errors
def shell(ctx: click.Context, model: str, endpoints: str | None, seed: int | None, max_actions: int) -> None:
    """Talk to the assistant on the terminal (one message a line; /stop ends, /restart starts over)."""
    if ctx.invoked_subcommand is not None:
        return
    import random

    from trainkit.dialogue.conversation import Conversation
    from trainkit.dialogue.shell import run_shell
    from trainkit.model import NEEDS_BOTH, load_model

    loaded = load_model(model, needs=NEEDS_BOTH)
    server = _action_server(endpoints)
    conversation = Conversation(loaded, "shell", random.Random(seed), server, max_actions, input_channel="cmdline")
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(f"Talking to {loaded.name}. Type /stop to end.", err=True)
    prompt = (lambda: click.echo("Your input -> ", nl=False)) if interactive else None
    try:
        run_shell(conversation, _input_lines(), click.echo, prompt)
    except KeyboardInterrupt:
        click.echo("", err=True)


@shell.command("nlu")
@model_option
@handle_errors
def shell_nlu(model: str) -> None:
    """Print the parse result of each line of input as JSON."""
    from trainkit.dialogue.shell import run_nlu_shell
    from trainkit.model import NEEDS_NLU, load_model

    loaded = load_model(model, needs=NEEDS_NLU)
    try:
        run_nlu_shell(loaded, _input_lines(), click.echo)
    except KeyboardInterrupt:
        click.echo("", err=True)


@main.command("run")
@model_option
@endpoints_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("-p", "--port", default=5005, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option("--max-body-bytes", default=1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted (larger ones get 413).")
@seed_option
@max_actions_option
@handle_errors
def run_server(model: str, endpoints: str | None, host: str, port: int, max_body_bytes: int, seed: int | None,
               max_actions: int) -> None:
    """Serve the assistant over HTTP: POST /model/parse, POST /webhooks/rest/webhook, GET /status.

    From a directory, the newest model with NLU and dialogue is served, else the newest.
    """
    from trainkit.dialogue.server import Assistant, AssistantServer
    from trainkit.model import NEEDS_BOTH, load_model

    try:
        loaded = load_model(model, needs=NEEDS_BOTH)
    except TrainkitError:
        loaded = load_model(model)  # serve what there is; the missing half answers 409
    assistant = Assistant(loaded, _action_server(endpoints), seed, max_actions)
    server = AssistantServer(assistant, host, port, max_body_bytes)
    click.echo(f"Serving {loaded.name} on {server.url} (Ctrl+C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)
    finally:
        server.server_close()


if __name__ == "__main__":  # pragma: no cover
    main()
