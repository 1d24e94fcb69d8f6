"""The TensorBoard plugin: `loader` (the entry point TensorBoard imports at start-up, light),
`cnnviz_plugin` (the dashboard's files and an app per route), `routes` (one function per route,
over `reading.lookups`), `query` and `web` (query parameters, answers, errors), `store` (data
through TensorBoard's data provider). Imports neither TensorFlow nor Keras."""
