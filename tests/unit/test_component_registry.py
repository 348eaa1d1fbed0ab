"""`dg` finds `PipesLambdaComponent` through the package's entry point for component registries."""

import importlib
import tomllib

from dagster.components.core.package_entry import (
    DG_PLUGIN_ENTRY_POINT_GROUP,
    get_package_objects_in_module,
    is_scaffoldable_object_key,
)
from dagster_shared.serdes.objects import EnvRegistryKey

from infra.constants import PROJECT_DIR
from pipeskit import PipesLambdaComponent


def test_the_entry_point_names_a_module_that_lists_the_component():
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    entry_points = pyproject["project"]["entry-points"]
    assert DG_PLUGIN_ENTRY_POINT_GROUP in entry_points, f"no [project.entry-points.{DG_PLUGIN_ENTRY_POINT_GROUP!r}]"
    [module_name] = entry_points[DG_PLUGIN_ENTRY_POINT_GROUP].values()
    # what dg does with it: every registry object of the module, named <module>.<attribute>
    listed = dict(get_package_objects_in_module(importlib.import_module(module_name)))
    assert listed == {"PipesLambdaComponent": PipesLambdaComponent}
    key = EnvRegistryKey(name="PipesLambdaComponent", namespace=module_name)
    assert key.to_typename() == "pipeskit.PipesLambdaComponent"
    assert is_scaffoldable_object_key(key), "dg scaffold defs pipeskit.PipesLambdaComponent has a scaffolder"
