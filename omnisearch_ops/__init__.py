"""The operator tools: package the model archive, deploy and operate the stack, watch the endpoint.

An application beside the core, as ``omnisearch_corpus`` is: it imports ``omnisearch_embed`` and
``model_code``, never the other way round. Commands (``[project.scripts]``): ``omnisearch-package-model``
(``package_model``), ``omnisearch-deploy`` (``deploy_cli``), ``omnisearch-monitor`` (``monitor``);
``scripts/*.py`` are thin wrappers over the same ``main`` functions. Library functions take typed
arguments (``aws.AwsTarget``, keywords), never an argparse namespace.
"""
