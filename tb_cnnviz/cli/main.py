"""`tb-cnnviz`'s arguments: the verbs explain, replay and serve, each with --help. Bad input is
told in one line on stderr with exit status 2, never a traceback; Ctrl-C exits with 130."""

import argparse
import os
import sys
import tempfile

from tb_cnnviz.cli.errors import CommandError
from tb_cnnviz.storage.metadata import METHODS

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="tb-cnnviz", description="See inside a convolutional network in TensorBoard: explain a saved model, "
        "replay the checkpoints of a training already run, serve the logs.")
    verbs = main.add_subparsers(dest="verb", required=True, metavar="{explain,replay,serve}")
    explain = verbs.add_parser("explain", help="log an eval event of a saved model on images",
                               description="Logs an eval event of a saved model (.keras; .h5 where Keras loads it): "
                               "every explanation method's maps of the images, their trust figures, activations and "
                               "filters, as the CNNViz callback logs one.")
    explain.add_argument("model", metavar="MODEL", help="the saved model")
    explain.add_argument("--step", type=int, help="the event's step (default: the saved optimizer's step count, else 0)")
    _event_arguments(explain)
    replay = verbs.add_parser("replay", help="log a train event per checkpoint of a training already run",
                              description="Logs a train event per checkpoint, as if the CNNViz callback had been in "
                              "fit: filter drift from the first, trust figures, top examples. A checkpoint's step is "
                              "its saved optimizer's step count; else the epoch in its file name (ModelCheckpoint's "
                              "{epoch}) times --steps-per-epoch; else its place in the names' order. Steps the logdir "
                              "holds already are skipped, so an interrupted replay goes on where it stopped.")
    replay.add_argument("checkpoints", metavar="CHECKPOINT", nargs="+",
                        help=".keras or .weights.h5 files, folders of them, or glob patterns")
    replay.add_argument("--model", help="the saved model (.keras) whose architecture .weights.h5 checkpoints fit "
                        "(default: the first .keras checkpoint)")
    replay.add_argument("--steps-per-epoch", type=_positive, metavar="K",
                        help="steps per epoch, for checkpoints without a saved optimizer")
    _event_arguments(replay)
    serve = verbs.add_parser("serve", help="run TensorBoard on a logdir and print the tab's URL",
                             description="Runs TensorBoard on LOGDIR and prints the URL of the cnnviz tab.")
    serve.add_argument("logdir", metavar="LOGDIR")
    serve.add_argument("--port", type=int, default=6006, help="default 6006")
    serve.add_argument("--host", default="localhost", help="the address to listen on (default localhost)")
    return main


def _event_arguments(verb):
    verb.add_argument("--images", required=True, metavar="PATH",
                      help="a folder of images (PNG, JPEG, BMP, GIF; subfolders are classes, named after them; read "
                      "as float32 in 0-255) or a .npy array (N, H, W, C) of values as they are; resized to the "
                      "model's input size (bilinear)")
    verb.add_argument("--logdir", required=True, metavar="DIR", help="the run's directory")
    verb.add_argument("--max-images", type=_positive, default=32, metavar="N",
                      help="at most N images, spread evenly over the classes (default 32)")
    verb.add_argument("--rescale", type=_number, metavar="FACTOR",
                      help="multiply the pixels by FACTOR first, e.g. 1/255 for a model trained on 0-1")
    verb.add_argument("--class-names", nargs="+", metavar="NAME",
                      help="the model's class names in its order, or a text file of them, one per line "
                      "(default: the class folders' names)")
    verb.add_argument("--head", choices=("softmax", "binary", "multilabel", "segmentation"),
                      help="what the model's output is, where its activation and compiled loss do not tell")
    verb.add_argument("--output", help="the name of the output to explain, of a model with several")
    verb.add_argument("--layer", help="the layer whose maps explain the images (default: the last conv layer)")
    verb.add_argument("--layers", nargs="+", metavar="LAYER",
                      help="the conv layers whose activations and filters are logged, or 'all'")
    verb.add_argument("--methods", nargs="+", metavar="METHOD", type=_method,
                      help=f"explanation methods, 'all' for every one (gradcam is always among them): {', '.join(METHODS)}")
    verb.add_argument("--quiet", action="store_true", help="print nothing but errors, and no progress bar")


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _number(text):
    """A number, or a fraction such as 1/255."""
    try:
        numerator, _, denominator = text.partition("/")
        return float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be a number such as 0.5 or 1/255, got {text}") from None


def _method(text):
    if text != "all" and text not in METHODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a method: give 'all' or some of {', '.join(METHODS)}")
    return text


def _options(arguments) -> dict:
    """CNNViz's options from the event verbs' arguments."""
    options = {}
    if arguments.methods:
        chosen = METHODS if "all" in arguments.methods else ("gradcam", *arguments.methods)
        options["methods"] = tuple(method for method in METHODS if method in chosen)
    if arguments.layer:
        options["gradcam_layer"] = arguments.layer
    options.update({name: getattr(arguments, name) for name in ("head", "output") if getattr(arguments, name)})
    if arguments.layers:
        options["layers"] = "all" if arguments.layers == ["all"] else arguments.layers
    return options


def _class_names(given):
    if given and len(given) == 1 and os.path.isfile(given[0]):
        with open(given[0], encoding="utf-8") as lines:
            return [line.strip() for line in lines if line.strip()]
    return given


def _import_commands():
    """tb_cnnviz.cli.commands, with Keras and its backend: imported here, after --help and usage
    errors, with stderr captured meanwhile (the C++ start-up lines TensorFlow prints whatever
    TF_CPP_MIN_LOG_LEVEL says) and shown only if the import fails."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            from tb_cnnviz.cli import commands
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return commands


def _dispatch(arguments, say):
    commands = _import_commands()
    if arguments.verb == "serve":
        return commands.serve(arguments.logdir, port=arguments.port, host=arguments.host, say=print)
    shared = dict(max_images=arguments.max_images, class_names=_class_names(arguments.class_names),
                  rescale=arguments.rescale, say=say, **_options(arguments))
    if arguments.verb == "explain":
        return commands.explain(arguments.model, arguments.images, arguments.logdir, step=arguments.step, **shared)
    return commands.replay(arguments.checkpoints, arguments.images, arguments.logdir, model_path=arguments.model,
                           steps_per_epoch=arguments.steps_per_epoch, verbose=False if arguments.quiet else "auto",
                           **shared)


def main(argv=None) -> int:
    """Runs the command; returns its exit status."""
    arguments = parser().parse_args(argv)
    quiet = getattr(arguments, "quiet", False)
    try:
        _dispatch(arguments, say=(lambda message: None) if quiet else print)
    except CommandError as error:
        print(f"tb-cnnviz {arguments.verb}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


def run():
    """The console script's entry point."""
    sys.exit(main())
