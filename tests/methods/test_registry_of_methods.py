"""Every registered method imports, is described, and can be built from defaults."""

from registry.compression.methods import Method, build_method, load_methods


def test_every_method_is_registered_described_and_buildable():
    methods = load_methods()
    assert list(methods) == [
        "dynamic-int8",
        "static-int8",
        "fp16",
        "mixed-precision",
        "prune",
        "distill",
        "train-small",
    ]
    for name, cls in methods.items():
        assert issubclass(cls, Method) and cls.__doc__ and cls.summary
        for field, info in cls.Config.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
        assert build_method(name).config == cls.Config()
