import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';

/**
 * ApolloDriver on Express without `@as-integrations/express5`, which @nestjs/apollo 14 loads
 * for Express but this project does not install: the same Apollo Server, schema, context and
 * error formatting, mounted through Apollo's own `executeHTTPGraphQLRequest` (what the
 * integration package does). Everything Nest does around resolvers (guards, param
 * decorators, the 'graphql' execution context) is untouched.
 */
@Injectable()
export class ExpressApolloDriver extends ApolloDriver {
  protected override async registerExpress(options: ApolloDriverConfig): Promise<void> {
    const server = new ApolloServer({ ...(options as object) } as never) as ApolloServer<object>;
    await server.start();
    const context = options.context as (arg: { req: Request; res: Response }) => Promise<object>;
    this.httpAdapterHost.httpAdapter.getInstance().use(options.path, async (req: Request, res: Response) => {
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const result = await server.executeHTTPGraphQLRequest({
        httpGraphQLRequest: {
          method: req.method.toUpperCase(),
          headers,
          search: new URL(req.url, 'http://localhost').search,
          body: req.body,
        },
        context: () => context({ req, res }),
      });
      for (const [name, value] of result.headers) res.setHeader(name, value);
      res.status(result.status ?? 200);
      if (result.body.kind === 'complete') {
        res.send(result.body.string);
        return;
      }
      for await (const chunk of result.body.asyncIterator) res.write(chunk);
      res.end();
    });
    this.apolloServer = server as never;
  }
}
