"""The SageMaker model code, shipped as model.tar.gz's code/: ``model_code.code.inference`` in the repository.

Under the toolkit code/ is on sys.path and these modules are top-level; each imports its siblings either way.
"""
