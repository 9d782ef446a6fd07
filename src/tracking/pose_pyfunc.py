"""An MLflow pyfunc over a DeepLabCut 3 (PyTorch) snapshot: images in, poses out.

Logged as an MLflow "model from code": this file is copied into the registered model, so loading it
needs DeepLabCut, not this project::

    model = mlflow.pyfunc.load_model("models:/synthetic_clinical@champion")
    poses = model.predict(pd.DataFrame({"image": ["frame.png"]}))   # or a list of paths

Input: a DataFrame with a column ``image`` (file paths, or RGB arrays height x width x 3), or a
list of them. Output: one row per image, columns ``<bodypart>_x``, ``<bodypart>_y`` (pixels of the
image) and ``<bodypart>_likelihood``. It imports nothing from ``src`` on purpose.

A version may carry its trust calibrator, the artifact ``trust_model`` (a JSON file that this
project's ``src.trust.score.TrustModel.load`` reads; docs/trust.md): its path is the loaded
model's ``trust_model_file`` (``model.unwrap_python_model().trust_model_file``), None without one.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

COORDS = ("x", "y", "likelihood")


def output_columns(bodyparts: list[str]) -> list[str]:
    return [f"{bodypart}_{coord}" for bodypart in bodyparts for coord in COORDS]


class DeepLabCutPoseModel(PythonModel):
    """DeepLabCut's own inference runner (single animal) over the snapshot in the model's artifacts
    ``pose_config`` (pytorch_config.yaml) and ``snapshot`` (.pt)."""

    def load_context(self, context) -> None:
        from deeplabcut.pose_estimation_pytorch.apis.utils import get_inference_runners
        from deeplabcut.pose_estimation_pytorch.config import read_config_as_dict

        settings = context.model_config or {}
        self.trust_model_file = context.artifacts.get("trust_model")  # None: no calibrator
        pose_config = read_config_as_dict(context.artifacts["pose_config"])
        self.bodyparts = list(pose_config["metadata"]["bodyparts"])
        device = str(settings.get("device", "cpu"))
        self.runner, _ = get_inference_runners(
            pose_config,
            snapshot_path=context.artifacts["snapshot"],
            max_individuals=1,
            batch_size=int(settings.get("batch_size", 1)),
            device=None if device == "auto" else device,
        )

    # The hint (a DataFrame; a list of paths or arrays works too) tells MLflow not to infer an input
    # schema from it; without a hint it prints a request for one in every process defining the class.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            if "image" not in model_input:
                raise ValueError(
                    f"the input has columns {list(model_input.columns)}; give a column 'image' "
                    "of image paths or RGB arrays"
                )
            images = list(model_input["image"])
        else:
            images = list(model_input)
        images = [image if isinstance(image, np.ndarray) else str(image) for image in images]
        predictions = self.runner.inference(images=images)
        rows = [p["bodyparts"][0].reshape(-1) for p in predictions]  # individual 0: x, y, p
        return pd.DataFrame(
            np.array(rows, dtype=float).reshape(len(rows), -1),
            columns=output_columns(self.bodyparts),
        )


mlflow.models.set_model(DeepLabCutPoseModel())
