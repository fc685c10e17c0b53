/* api/endpoints.c: the table of Cliq API classes (endpoints.h) and lookups
 * by name. */
#include "api/endpoints.h"

#include <string.h>

#define CLIQ_API_ROW_(id, nm, lim, win, lk) [CLIQ_API_##id] = { nm, lim, win, lk },
static const struct cliq_api_info api_table[CLIQ_API_COUNT] = {
  CLIQ_API_CLASSES(CLIQ_API_ROW_)
};
#undef CLIQ_API_ROW_

const struct cliq_api_info *cliq_api_info(enum cliq_api api)
{
  if ((int)api < 0 || api >= CLIQ_API_COUNT)
    return NULL;
  return &api_table[api];
}

const char *cliq_api_name(enum cliq_api api)
{
  const struct cliq_api_info *info = cliq_api_info(api);
  return info ? info->name : "?";
}

int cliq_api_from_name(const char *name)
{
  if (!name)
    return -1;
  for (int i = 0; i < CLIQ_API_COUNT; i++)
    if (strcmp(api_table[i].name, name) == 0)
      return i;
  return -1;
}
